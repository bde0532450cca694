"""One contract for issue 19's read models (notices, risk levels, case reads, rotated tokens):
the memory adapters and the Redis adapters behave alike; Redis cannot be made to forge."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from domain.cases import Case
from domain.notices import VenueNotice
from domain.outreach_ports import AccessIndex, NoticeLog, NoticeView, RiskLevels
from domain.people import Merchant
from domain.ports import Directory
from domain.risk import RegionRisk, RiskLevel
from infrastructure.readmodels.memory.accesses import MemoryAccessIndex
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.notice_projection import NoticeProjector
from infrastructure.readmodels.memory.notices import MemoryNoticeLog, MemoryRiskLevels
from infrastructure.readmodels.records import Pseudonyms, Seals
from infrastructure.readmodels.redis.accesses import RedisAccessIndex
from infrastructure.readmodels.redis.directory import RedisDirectory
from infrastructure.readmodels.redis.notices import RedisNoticeLog, RedisRiskLevels
from infrastructure.readmodels.redis.projection import RedisProjector
from infrastructure.readmodels.redis.records import RedisRecords
from tests.contracts.test_readmodels import events, new_visitor
from tests.integration.conftest import records_of

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@dataclass
class Models:
    directory: Directory
    notices: NoticeLog
    risks: RiskLevels
    accesses: AccessIndex
    project: Callable[[list[Any]], None]
    heard: list[NoticeView]
    client: redis.Redis | None = None
    prefix: str = ""


def memory_models() -> Models:
    directory = MemoryDirectory()
    notices, risks, accesses = MemoryNoticeLog(), MemoryRiskLevels(), MemoryAccessIndex()
    projector = NoticeProjector(directory, notices, risks, accesses)
    heard: list[NoticeView] = []
    projector.on_notice(heard.append)

    def project(evts: list[Any]) -> None:
        for event in evts:
            projector.apply(event)

    return Models(directory, notices, risks, accesses, project, heard)


def redis_models(client: redis.Redis, prefix: str) -> Models:
    records = records_of(prefix)
    projector = RedisProjector(client, records, 180)
    counter = iter(range(1, 1_000_000))

    def project(evts: list[Any]) -> None:
        projector.apply_batch([(next(counter), event) for event in evts])

    return Models(
        RedisDirectory(client, records),
        RedisNoticeLog(client, records),
        RedisRiskLevels(client, records, 0.0),
        RedisAccessIndex(client, records),
        project,
        [],
        client,
        prefix,
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def models(request: pytest.FixtureRequest) -> Iterator[Models]:
    if request.param == "memory":
        yield memory_models()
    else:
        client: redis.Redis = request.getfixturevalue("redis_client")
        prefix: str = request.getfixturevalue("redis_prefix")
        yield redis_models(client, prefix)


def new_notice(venue_id: uuid.UUID, start: datetime, end: datetime, sent: datetime) -> VenueNotice:
    return VenueNotice(
        id=uuid.uuid4(),
        venue_id=venue_id,
        merchant_id=uuid.uuid4(),
        message="请留意",
        start=start,
        end=end,
        sent_at=sent,
        reached=3,
    )


def test_notices_are_found_by_venue_and_overlap_and_counted_since(models: Models) -> None:
    venue, other = uuid.uuid4(), uuid.uuid4()
    early = new_notice(venue, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    late = new_notice(venue, T0 + timedelta(days=1), T0 + timedelta(days=2), T0 + timedelta(days=2))
    models.project(events(early, late, new_notice(other, T0, T0, T0)))
    found = models.notices.at_venue(venue, T0 + timedelta(minutes=30), T0 + timedelta(hours=3))
    assert [n.notice_id for n in found] == [early.id]
    assert found[0].message == "请留意"
    assert len(models.notices.at_venue(venue, T0, T0 + timedelta(days=3))) == 2
    assert models.notices.sent_since(venue, T0 + timedelta(days=1)) == 1
    assert models.notices.at_venue(uuid.uuid4(), T0, T0 + timedelta(days=3)) == []


def test_levels_are_kept_per_region(models: Models) -> None:
    risk = RegionRisk(id=uuid.uuid4(), region="110100")
    risk.set_level(RiskLevel.HIGH, "note", uuid.uuid4(), uuid.uuid4(), T0)
    models.project(events(risk))
    own = models.risks.own(["110105", "110100", "110000"])
    assert own[0] is None
    assert own[2] is None
    assert own[1] is not None
    assert (own[1].level, own[1].since) == ("high", T0)


def test_reads_concern_the_index_people_and_the_listed_and_erasure_drops_them(
    models: Models,
) -> None:
    index, contact = new_visitor(), new_visitor()
    case = Case(
        id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        opened_by=uuid.uuid4(),
        index_ids=[index.id],
        start=T0,
        end=T0 + timedelta(days=1),
        legal_basis="basis",
    )
    case._accessed(by=uuid.uuid4(), what="read trajectory", subject=None, listed=[], at=T0)
    case._accessed(by=uuid.uuid4(), what="read contacts", subject=None, listed=[contact.id], at=T0)
    case._accessed(
        by=uuid.uuid4(), what="reveal contact details", subject=str(contact.id), listed=[], at=T0
    )
    models.project(events(index, contact, case))
    assert [a.what for a in models.accesses.of_people([index.id])] == [
        "read trajectory",
        "read contacts",
    ]
    assert [a.version for a in models.accesses.of_people([contact.id])] == [3, 4]
    assert models.accesses.of_people([uuid.uuid4()]) == []
    index.erase(T0)
    models.project(events(index))
    assert models.accesses.of_people([index.id]) == []


def test_a_rotated_token_replaces_the_old_one(models: Models) -> None:
    merchant = Merchant(id=uuid.uuid4(), name="m", contact_phone="p", token_hash="old")
    models.project(events(merchant))
    merchant.rotate_token("new")
    models.project(events(merchant))
    assert models.directory.principal("old") is None
    found = models.directory.principal("new")
    assert found is not None
    assert (found.role, found.id) == ("merchant", merchant.id)


@pytest.mark.integration
def test_redis_write_access_cannot_forge_or_move_a_notice(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # Given two venues, one with a real notice.
    models = redis_models(redis_client, redis_prefix)
    venue, other = uuid.uuid4(), uuid.uuid4()
    real = new_notice(venue, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    models.project(events(real))
    records = records_of(redis_prefix)
    stored = redis_client.lrange(records.name("ntc", venue), 0, -1)[0]
    # When someone who can write Redis but holds no key copies it to the other venue, and
    # pushes a record of their own making to both.
    redis_client.rpush(records.name("ntc", other), stored)
    without_the_key = RedisRecords(redis_prefix, Pseudonyms(b"n" * 32), Seals(b"x" * 32))
    forged = without_the_key.seal(
        records.name("ntc", venue),
        NoticeView(uuid.uuid4(), venue, "forged", T0, T0 + timedelta(hours=1), T0),
    )
    redis_client.rpush(records.name("ntc", venue), forged, b"junk")
    redis_client.publish(f"{redis_prefix}notices", forged)
    # Then readers find only the real notice, where it was sent.
    window = (T0, T0 + timedelta(days=1))
    assert [n.notice_id for n in models.notices.at_venue(venue, *window)] == [real.id]
    assert models.notices.at_venue(other, *window) == []
