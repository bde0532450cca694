"""Redis neither grants powers nor tells who was where (real PostgreSQL and Redis).

Each attack is made as someone with write access to Redis would make it: by watching which key
an action creates, then writing there. Nobody among them holds the service's keys.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import redis
from litestar.testing import TestClient

from domain.ports import AgencyView, Principal
from infrastructure.bootstrap import build_services
from infrastructure.history.memory import MemoryHistory
from infrastructure.keys.crypto import normalise_phone
from infrastructure.readmodels.redis.directory import RedisDirectory
from infrastructure.readmodels.redis.projection import RedisProjector
from infrastructure.readmodels.redis.visits import RedisVisitLog
from infrastructure.settings import load_settings
from interface.http.app import create_app
from tests.conftest import ADMIN_TOKEN, MovableClock, World, bearer
from tests.contracts.test_readmodels import T0, events, new_venue, new_visit, new_visitor
from tests.history_log import Log, sqlite_recorder
from tests.integration.conftest import records_of

pytestmark = pytest.mark.integration

T = TypeVar("T")


@dataclass
class Deployment:
    """A production deployment of this test's own, driven over HTTP, and its Redis."""

    world: World
    redis: redis.Redis
    prefix: str
    clock: MovableClock

    def keys(self) -> set[str]:
        return {k.decode() for k in self.redis.scan_iter(match=self.prefix + "*", count=1000)}

    def made_by(self, action: Callable[[], T], kind: str) -> tuple[T, str]:
        """What the action answers, and the one key of this kind (`tok`, `agency`) it created."""
        before = self.keys()
        answer = action()
        (key,) = [k for k in self.keys() - before if k.startswith(f"{self.prefix}{kind}:")]
        return answer, key

    def dump(self) -> bytes:
        """Every key name and value under the prefix, as `redis-cli --scan` and reads give them."""
        out: list[bytes] = []
        for key in sorted(self.keys()):
            out.append(key.encode())
            kind = self.redis.type(key).decode()
            if kind == "string":
                out.append(self.redis.get(key) or b"")
            elif kind == "list":
                out += self.redis.lrange(key, 0, -1)
            elif kind == "set":
                out += sorted(self.redis.smembers(key))
            elif kind == "zset":
                out += [m for m, _ in self.redis.zrange(key, 0, -1, withscores=True)]
            elif kind == "hash":
                for field, value in self.redis.hgetall(key).items():
                    out += [field, value]
            else:
                pytest.fail(f"a key of type {kind} that this dump does not read")
        return b"\n".join(out)


@pytest.fixture
def deployment(production: dict[str, str], redis_client: redis.Redis) -> Iterator[Deployment]:
    settings = load_settings(
        {},
        **{**production, "admin_token": ADMIN_TOKEN},
        public_base_url="https://fangxin.test",
        auto_checkout_interval_seconds=3600,
    )
    clock = MovableClock()
    services = build_services(settings, clock=clock)
    try:
        with TestClient(create_app(settings, services=services)) as client:
            yield Deployment(World(client), redis_client, settings.redis_prefix, clock)
    finally:
        services.close()


@dataclass
class Case:
    """An approved case of a Beijing agency on a visitor who ate at a Beijing venue."""

    case_id: str
    agency_id: str
    tracer: dict[str, Any]
    supervisor: dict[str, Any]
    supervisor_token_key: str


def approved_case(d: Deployment, jurisdiction: str = "110000") -> Case:
    world = d.world
    agency = world.agency([jurisdiction])
    tracer = world.officer(agency, "tracer")
    supervisor, supervisor_key = d.made_by(lambda: world.officer(agency, "supervisor"), "tok")
    venue = world.venue(world.merchant(), name="老王面馆", region="110105")
    index = world.visitor(phone="+8613900000001")
    start = d.clock.now()
    world.check_in(index, venue)
    d.clock.advance(timedelta(minutes=30))
    opened = world.client.post(
        "/v1/cases",
        json={
            "index": {"visitor_id": index["visitor_id"]},
            "from": (start - timedelta(hours=1)).isoformat(),
            "to": d.clock.now().isoformat(),
            "legal_basis": "PRC Law on Infectious Diseases art. 12",
        },
        headers=bearer(tracer["token"]),
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    approved = world.client.post(
        f"/v1/cases/{case_id}/approval",
        json={"approve": True, "reason": "lab confirmed"},
        headers=bearer(supervisor["token"]),
    )
    assert approved.status_code == 200, approved.text
    return Case(case_id, agency, tracer, supervisor, supervisor_key)


def test_a_token_record_forged_in_redis_as_a_supervisor_is_refused_and_logged(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an approved case, and an outsider's own token whose record they found in Redis
    case = approved_case(deployment)
    outsider, key = deployment.made_by(deployment.world.visitor, "tok")
    # When they rewrite that record as the case's supervisor
    forged = Principal(
        role="supervisor",
        id=uuid.UUID(case.supervisor["officer_id"]),
        agency_id=uuid.UUID(case.agency_id),
    )
    deployment.redis.set(key, msgspec.json.encode(forged))
    with caplog.at_level(logging.WARNING):
        answer = deployment.world.client.get(
            f"/v1/cases/{case.case_id}/trajectory", headers=bearer(outsider["token"])
        )
    # Then their token is refused, and the refusal is logged without naming anyone
    assert answer.status_code == 401
    refusals = [r for r in caplog.records if "refused a token record" in r.getMessage()]
    assert refusals
    for record in refusals:
        assert outsider["token"] not in record.getMessage()
        assert case.supervisor["officer_id"] not in record.getMessage()


def test_a_supervisors_token_record_copied_onto_another_token_is_refused(
    deployment: Deployment,
) -> None:
    # Given an approved case, and an outsider's own token whose record they found in Redis
    case = approved_case(deployment)
    outsider, key = deployment.made_by(deployment.world.visitor, "tok")
    # When they copy the supervisor's record, authentic as it is, onto their own token's key
    deployment.redis.set(key, deployment.redis.get(case.supervisor_token_key) or b"")
    answer = deployment.world.client.get(
        f"/v1/cases/{case.case_id}/trajectory", headers=bearer(outsider["token"])
    )
    # Then their token is refused, and the supervisor's still works
    assert answer.status_code == 401
    own = deployment.world.client.get(
        f"/v1/cases/{case.case_id}/trajectory", headers=bearer(case.supervisor["token"])
    )
    assert own.status_code == 200


@pytest.mark.parametrize("how", ["copied from an agency covering Beijing", "written as JSON"])
def test_an_agency_widened_in_redis_still_cannot_read_a_venue_outside_its_jurisdiction(
    deployment: Deployment, how: str
) -> None:
    # Given a Shanghai agency's approved case on a visitor who ate in Beijing, and a Beijing
    # agency, whose record the outsider finds in Redis as they find Shanghai's
    world = deployment.world
    _, beijing_key = deployment.made_by(lambda: world.agency(["110000"]), "agency")
    before = deployment.keys()
    case = approved_case(deployment, jurisdiction="310000")
    (shanghai_key,) = [
        k for k in deployment.keys() - before if k.startswith(f"{deployment.prefix}agency:")
    ]
    trajectory = f"/v1/cases/{case.case_id}/trajectory"
    hidden = world.client.get(trajectory, headers=bearer(case.tracer["token"])).json()
    assert (hidden["visits"], hidden["outside_jurisdiction"]) == ([], 1)
    # When they widen the Shanghai agency's jurisdiction in Redis to cover Beijing
    if how == "written as JSON":
        widened = AgencyView(
            agency_id=uuid.UUID(case.agency_id), name="x", jurisdiction=["310000", "110000"]
        )
        deployment.redis.set(shanghai_key, msgspec.json.encode(widened))
    else:
        deployment.redis.set(shanghai_key, deployment.redis.get(beijing_key) or b"")
    # Then the Beijing venue stays out of the Shanghai tracer's reach
    answer = world.client.get(trajectory, headers=bearer(case.tracer["token"]))
    assert answer.status_code in (403, 404)
    assert "老王面馆" not in answer.text


def test_a_copy_of_redis_holds_no_name_phone_token_or_raw_id(deployment: Deployment) -> None:
    # Given a populated deployment: a family with a child, a neighbour, a case, an erasure
    world = deployment.world
    names = ["王秀英", "小明宝宝", "Zhang Wei", "李奶奶"]
    phones = ["+8613912345678", "+8618687654321", "+8613700001111"]
    merchant = world.merchant()
    venue = world.venue(merchant, name="老王面馆")
    family = world.visitor(name=names[0], phone=phones[0], dependents=[names[1]])
    neighbour = world.visitor(name=names[2], phone=phones[1])
    erased = world.visitor(dependents=["小红"])
    world.check_in(family, venue, party=[names[1]])
    world.check_in(neighbour, venue)
    world.check_in(erased, venue)
    assisted = world.client.post(
        f"/v1/venues/{venue['venue_id']}/assisted-check-ins",
        json={"name": names[3], "phone": phones[2]},
        headers=bearer(merchant["token"]),
    )
    assert assisted.status_code == 201
    deployment.clock.advance(timedelta(minutes=20))
    out = world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(family["token"])
    )
    assert out.status_code == 200
    assert world.client.delete("/v1/me", headers=bearer(erased["token"])).status_code == 204
    case = approved_case(deployment)
    people = [family, neighbour, erased, case.tracer, case.supervisor]
    ids = [family["visitor_id"], neighbour["visitor_id"], erased["visitor_id"], venue["venue_id"]]
    ids += [merchant["merchant_id"], case.agency_id, case.case_id]
    ids += [v["visit_id"] for v in world.visits(family)]
    # When someone copies every key and value
    dump = deployment.dump()
    # Then it holds no name (a child's included), no phone, no token and no raw id
    assert len(dump) > 2_000
    for name in [*names, "小红", "老王面馆"]:
        assert name.encode() not in dump, f"{name!r} is in Redis"
    for phone in phones:
        for form in (phone, phone[3:], normalise_phone(phone)):
            assert form.encode() not in dump, f"{phone!r} is in Redis"
    for token in [merchant["token"], *(p["token"] for p in people)]:
        assert token.encode() not in dump
    for ident in ids:
        raw = uuid.UUID(ident)
        for form in (str(raw).encode(), raw.hex.encode(), raw.bytes):
            assert form not in dump, f"the id {ident} is in Redis"


def test_records_and_index_entries_moved_to_other_keys_are_refused(
    redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    # Given two merchants' venues in Beijing and Shanghai, a family, and a stranger's visit
    records = records_of(redis_prefix)
    projector = RedisProjector(redis_client, records, 180)
    directory = RedisDirectory(redis_client, records)
    log = Log(sqlite_recorder(tmp_path / "events.db"), tmp_path)  # the history: not asked here
    visits = RedisVisitLog(
        redis_client, records, projector, MemoryHistory(log.recorder, log.mapper)
    )
    owner, rival = uuid.uuid4(), uuid.uuid4()
    beijing, shanghai = new_venue(owner), new_venue(rival)
    parent, stranger = new_visitor(["小明"]), new_visitor()
    child = parent.dependent_ids[0]
    visit = new_visit(parent.id, parent.id, beijing.id, T0)
    projector.apply_batch(
        list(enumerate(events(beijing, shanghai, parent, stranger, visit), start=1))
    )

    def move(kind: str, source: uuid.UUID, target: uuid.UUID) -> None:
        value = redis_client.get(records.name(kind, source))
        assert value is not None
        redis_client.set(records.name(kind, target), value)

    # When authentic records are copied under other keys, and index entries into other indexes
    move("venue", beijing.id, shanghai.id)
    move("guardian", child, stranger.id)
    redis_client.zadd(records.name("mvenues", rival), {records.pseudonyms.of(beijing.id): 9})
    redis_client.sadd(records.name("open", stranger.id), records.pseudonyms.of(visit.id))
    # Then none of them is believed where it was moved: no venue, no guardian, no visit
    assert directory.venue(shanghai.id) is None
    assert directory.guardian_of(stranger.id) is None
    assert directory.venues_of(rival) == []
    assert visits.open_of(stranger.id) == []
    # And where they belong they still are
    found = directory.venue(beijing.id)
    assert found is not None
    assert found.region == "110105"
    assert directory.guardian_of(child) == parent.id
    assert [v.visit_id for v in visits.open_of(parent.id)] == [visit.id]


def test_a_closed_visits_record_left_by_an_older_version_is_not_read_as_open(
    redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    # Given an open visit, and the history that knows it closed
    records = records_of(redis_prefix)
    projector = RedisProjector(redis_client, records, 180)
    log = Log(sqlite_recorder(tmp_path / "events.db"), tmp_path)
    visits = RedisVisitLog(
        redis_client, records, projector, MemoryHistory(log.recorder, log.mapper)
    )
    visitor, venue = new_visitor(), new_venue(uuid.uuid4())
    visit = new_visit(visitor.id, visitor.id, venue.id, T0)
    made = events(visitor, venue, visit)
    log.recorder.insert_events([log.mapper.to_stored_event(e) for e in made])
    projector.apply_batch(list(enumerate(made, start=1)))
    log.check_out(visit, T0 + timedelta(minutes=30))
    # When its record carries an end, as records of closed visits did before issue 21
    name = records.name("visit", visit.id)
    stored = msgspec.json.decode(redis_client.get(name) or b"{}")
    redis_client.set(name, msgspec.json.encode({**stored, "e": stored["s"] + 1800}))
    # Then it is not taken for an open visit: the history answers, closed
    assert visits.open_of(visitor.id) == []
    found = visits.get(visit.id)
    assert found is not None
    assert found.checked_out_at == T0 + timedelta(minutes=30)
