"""Redis keeps only what is hot (issue 21): a closed visit leaves it, and is still read from the
history by its visitor, the case's tracer and the venue's merchant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from infrastructure.bootstrap import build_services
from infrastructure.readmodels.records import Pseudonyms
from infrastructure.services import Services
from infrastructure.settings import load_settings
from interface import cli
from interface.http.app import create_app
from tests.checkins import check_in
from tests.conftest import ADMIN_TOKEN, MovableClock, World, bearer


@pytest.fixture
def running(production: dict[str, str]) -> Iterator[tuple[World, Services, MovableClock]]:
    clock = MovableClock()
    placed = {**production, "admin_token": ADMIN_TOKEN, "auto_checkout_interval_seconds": 3600}
    settings = load_settings({}, **placed, public_base_url="https://fangxin.test")
    services = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=services)) as client:
        yield World(client), services, clock
    services.close()


def redis_of(services: Services) -> redis.Redis:
    assert services.redis is not None
    return services.redis


def everything_in(client: redis.Redis, prefix: str) -> str:
    """Every key name and member under the prefix, as one text (values of strings included)."""
    parts: list[str] = []
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()
        parts.append(key)
        kind = client.type(key).decode()
        if kind == "set":
            parts += [m.decode(errors="replace") for m in client.smembers(key)]
        elif kind == "zset":
            parts += [m.decode(errors="replace") for m in client.zrange(key, 0, -1)]
        elif kind == "hash":
            parts += [f.decode(errors="replace") for f in client.hkeys(key)]
        elif kind == "string":
            parts.append(client.get(key).decode(errors="replace"))  # type: ignore[union-attr]
    return "\n".join(parts)


def own_bytes(client: redis.Redis, prefix: str) -> int:
    """The memory of every key under the prefix (`MEMORY USAGE`, exact)."""
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    return sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)


def leave(world: World, visitor: dict[str, Any], venue: dict[str, Any]) -> None:
    response = world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 200, response.text


def test_a_closed_visit_leaves_redis_and_is_still_read_from_the_history(
    running: tuple[World, Services, MovableClock],
) -> None:
    world, services, clock = running
    settings = services.settings
    names = Pseudonyms(services.keys.service_key("redis-names"))
    agency = world.agency(["110100"])
    tracer, supervisor = world.officer(agency, "tracer"), world.officer(agency, "supervisor")
    merchant = world.merchant()
    venue = world.venue(merchant)
    index = world.visitor(phone="+8613900000101")
    friend = world.visitor(phone="+8613900000102")
    start = clock.now()
    visit = world.check_in(index, venue)
    visit_id = uuid.UUID(visit["visit_id"])
    # While open, it is hot: its record, its person's open set, its deadline.
    assert names.of(visit_id) in everything_in(redis_of(services), settings.redis_prefix)
    others = [friend, *(world.visitor() for _ in range(3))]  # enough for the statistics' k
    for other in others:
        world.check_in(other, venue)
    clock.advance(timedelta(minutes=30))
    for person in (index, *others):
        leave(world, person, venue)
    clock.advance(timedelta(hours=2))

    # Redis holds no key, member or value naming the closed visit.
    assert names.of(visit_id) not in everything_in(redis_of(services), settings.redis_prefix)
    # Its visitor still sees it, closed.
    [shown] = world.visits(index)
    assert (shown["visit_id"], shown["checkout_reason"]) == (visit["visit_id"], "payment")
    # The case's trajectory holds it, and the friend is a contact.
    case = world.approved_case(tracer, supervisor, "+8613900000101", start, clock.now())
    trajectory = world.client.get(f"/v1/cases/{case}/trajectory", headers=bearer(tracer["token"]))
    assert [v["visit_id"] for v in trajectory.json()["visits"]] == [visit["visit_id"]]
    contacts = world.client.get(f"/v1/cases/{case}/contacts", headers=bearer(tracer["token"]))
    assert friend["visitor_id"] in {c["visitor_id"] for c in contacts.json()["contacts"]}
    # The merchant's statistics count it.
    stats = world.client.get(
        f"/v1/venues/{venue['venue_id']}/stats",
        params={
            "from": (start - timedelta(days=1)).isoformat(),
            "to": clock.now().isoformat(),
            "bucket": "day",
        },
        headers=bearer(merchant["token"]),
    )
    assert stats.status_code == 200, stats.text
    assert stats.json()["totals"]["check_ins"] == 5


def test_redis_grows_by_less_than_100_bytes_per_check_in(
    running: tuple[World, Services, MovableClock],
) -> None:
    world, services, clock = running
    prefix = services.settings.redis_prefix
    venues = [world.venue(world.merchant()) for _ in range(3)]
    people = [world.visitor() for _ in range(5)]
    for person in people:  # each has an open visit, as each will have at the end
        world.check_in(person, venues[0])
    leave(world, people[0], venues[0])
    before = own_bytes(redis_of(services), prefix)
    check_ins = 0
    for round_ in range(8):
        for i, person in enumerate(people):
            world.check_in(person, venues[(i + round_) % 3])  # closes their open visit
            check_ins += 1
            clock.advance(timedelta(minutes=1))
        for i, person in enumerate(people):
            if (i + round_) % 2:
                leave(world, person, venues[(i + round_) % 3])
    grown = own_bytes(redis_of(services), prefix) - before
    # Before issue 21, about 1,000 bytes each: every visit and its indexes stayed for 28 days.
    assert grown / check_ins < 100, (grown, check_ins)


def test_fangxin_rebuild_rebuilds_the_history_from_the_log_too(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({}, **production)
    services = build_services(settings)
    app = services.app
    merchant = app.register_merchant("M", "+8613900000000", None)
    venue = app.register_venue(merchant.id, "V", "Rd", "110105", "c", None, 60, None)
    code = app.codes_of(app.venues_of(merchant.id)[0]).code
    people = [app.register_visitor(f"P{i}", f"+86138000000{i:02d}", [], None) for i in range(4)]
    for person in people * 2:  # each visit but the last of each closed by the next check-in
        check_in(services, person.id, code)
    now = services.app.ports.clock.now()
    window = (now - timedelta(days=1), now + timedelta(days=1))

    def read(built: Services) -> list[Any]:
        visits = built.app.ports.visits
        return [visits.of_guardian(p.id, *window) for p in people] + [
            built.app.ports.contacts.stays_at(venue, *window, now)
        ]

    before = read(services)
    head = services.store.recorder.max_notification_id()
    services.close()
    for name, value in production.items():
        monkeypatch.setenv(f"FANGXIN_{name.upper()}", value)

    assert cli.main(["rebuild"]) == 0

    assert f"rebuilt the history from {head:,} events" in capsys.readouterr().out
    again = build_services(settings)
    try:
        assert again.history is not None
        assert again.history.history.position() == head
        assert read(again) == before
        assert sum(len(found) for found in before[:4]) == 8
    finally:
        again.close()


def test_a_worker_follows_no_history_itself_and_reports_it_stalled_while_it_stays_behind(
    production: dict[str, str],
) -> None:
    placed = {**production, "admin_token": ADMIN_TOKEN, "auto_checkout_interval_seconds": 3600}
    # Behind and not moving at the second look: stalled (10 s by default).
    settings = load_settings({}, **placed, history_stalled_seconds=0)
    services = build_services(settings)
    app = create_app(settings, services=services)
    with TestClient(app) as client:
        # The duties' first round (retention catches the history up before it drops a day)
        # runs as the app starts: done and stopped, nothing in this worker moves the history.
        app.app.state.duties.stop()
        world = World(client)
        answer = world.client.get("/health").json()
        assert answer["history"] == {"name": "history", "state": "running"}
        assert answer["history_lag"] == 0

        world.check_in(world.visitor(), world.venue(world.merchant()))
        behind = world.client.get("/health")
        assert behind.status_code == 503
        assert behind.json()["history"]["state"] == "stalled"
        assert behind.json()["history"]["behind_since"]
        assert behind.json()["history_lag"] > 0
        assert "the projection history is stalled" in behind.json()["detail"]

        # What `fangxin follow` does, in its own process: the history moves, and is caught up.
        assert services.history is not None
        assert services.history.catch_up_once() > 0
        caught_up = world.client.get("/health")
        assert caught_up.status_code == 200
        assert caught_up.json()["history"] == {"name": "history", "state": "running"}
        assert caught_up.json()["history_lag"] == 0
    services.close()
