"""One contract for the read models: the memory adapters, the embedded deployment's (memory for
what is hot, the SQLite history for the rest) and production's (Redis for what is hot, the
history for the rest) behave alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from eventsourcing.domain import Aggregate

from domain.cases import ExposureNotice
from domain.people import Agency, Merchant, Officer, Visitor
from domain.ports import ContactIndex, Directory, ExposureLog, VisitLog
from domain.venues import Venue
from domain.visits import CheckoutReason, Visit
from infrastructure.history.memory import MemoryHistory
from infrastructure.history.sqlite_open import ResumableSQLiteHistory
from infrastructure.readmodels.history_reads import HistoryContactIndex, HistoryExposureLog
from infrastructure.readmodels.history_visits import HistoryVisitLog
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.open_visits import MemoryOpenVisits
from infrastructure.readmodels.memory.projection import ReadModelProjector
from infrastructure.readmodels.memory.tracing import MemoryContactIndex, MemoryExposureLog
from infrastructure.readmodels.memory.visits import MemoryVisitLog
from infrastructure.readmodels.redis.directory import RedisDirectory
from infrastructure.readmodels.redis.loop import LoopClients
from infrastructure.readmodels.redis.projection import RedisProjector
from infrastructure.readmodels.redis.visits import RedisVisitLog
from tests.history_log import Log, sqlite_recorder
from tests.integration.conftest import REDIS_CLUSTER, REDIS_URL, records_of

T0 = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)  # an hour before midnight: stays cross days


@dataclass
class Models:
    directory: Directory
    visits: VisitLog
    contacts: ContactIndex
    exposures: ExposureLog
    project: Callable[[list[Any]], None]
    # Closes the running event loop's Redis client (memory: nothing to close).
    close_loop_client: Callable[[], Awaitable[None]] | None = None
    # Destroys the keys of the days before one, as retention does first (where the store
    # drops only days whose key is gone).
    shred_days_before: Callable[[date], object] = lambda day: 0


def memory_models() -> Models:
    directory, visits = MemoryDirectory(), MemoryVisitLog()
    contacts, exposures = MemoryContactIndex(), MemoryExposureLog()
    projector = ReadModelProjector(directory, visits, contacts, exposures, 180)

    def project(events: list[Any]) -> None:
        for event in events:
            projector.apply(event)

    return Models(directory, visits, contacts, exposures, project)


def redis_models(client: redis.Redis, prefix: str, folder: Path) -> Models:
    """Redis for what is hot, and a history that follows a log the events are also saved to."""
    records = records_of(prefix)
    projector = RedisProjector(client, records, 180)
    log = Log(sqlite_recorder(folder / "events.db"), folder)
    history = MemoryHistory(log.recorder, log.mapper, 180)
    loop_clients = LoopClients(REDIS_URL, REDIS_CLUSTER)

    def project(events: list[Any]) -> None:
        notifications = log.recorder.insert_events([log.mapper.to_stored_event(e) for e in events])
        projector.apply_batch(list(zip(notifications or [], events, strict=True)))

    return Models(
        RedisDirectory(client, records, loop_clients=loop_clients),
        RedisVisitLog(client, records, projector, history, loop_clients),
        HistoryContactIndex(history),
        HistoryExposureLog(history),
        project,
        loop_clients.close,
    )


def embedded_models(folder: Path) -> Iterator[Models]:
    """The embedded deployment's: memory for what is hot, the SQLite history for the rest."""
    directory, hot = MemoryDirectory(), MemoryOpenVisits()
    projector = ReadModelProjector(directory, hot, None, None, 180)
    log = Log(sqlite_recorder(folder / "events.db"), folder)
    history = ResumableSQLiteHistory(log.recorder, log.mapper, log.keys, folder)

    def project(events: list[Any]) -> None:
        log.recorder.insert_events([log.mapper.to_stored_event(e) for e in events])
        for event in events:
            projector.apply(event)

    yield Models(
        directory,
        HistoryVisitLog(hot, history),
        HistoryContactIndex(history),
        HistoryExposureLog(history),
        project,
        shred_days_before=log.keys.destroy_days_before,
    )
    history.close()


@pytest.fixture(params=["memory", "embedded", pytest.param("redis", marks=pytest.mark.integration)])
def models(request: pytest.FixtureRequest) -> Iterator[Models]:
    if request.param == "memory":
        yield memory_models()
    elif request.param == "embedded":
        yield from embedded_models(request.getfixturevalue("tmp_path"))
    else:
        client: redis.Redis = request.getfixturevalue("redis_client")
        prefix: str = request.getfixturevalue("redis_prefix")
        yield redis_models(client, prefix, request.getfixturevalue("tmp_path"))


def events(*aggregates: Aggregate) -> list[Any]:
    return [e for a in aggregates for e in a.collect_events()]


def new_visitor(dependents: list[str] = [], phone_index: str = "idx") -> Visitor:  # noqa: B006
    return Visitor(
        id=uuid.uuid4(),
        name="n",
        phone="p",
        phone_index=phone_index,
        token_hash=uuid.uuid4().hex,
        dependent_ids=[uuid.uuid4() for _ in dependents],
        dependent_names=dependents,
        assisted=False,
    )


def new_venue(merchant_id: uuid.UUID, max_dwell: int = 180) -> Venue:
    return Venue(
        id=uuid.uuid4(),
        merchant_id=merchant_id,
        name="老王面馆",
        address="1 Road",
        region="110105",
        category="food",
        capacity=20,
        max_dwell_minutes=max_dwell,
    )


def new_visit(person: uuid.UUID, guardian: uuid.UUID, venue: uuid.UUID, at: datetime) -> Visit:
    return Visit(
        id=uuid.uuid4(), visitor_id=person, guardian_id=guardian, venue_id=venue, at=at, via="scan"
    )


def test_tokens_name_their_principals(models: Models) -> None:
    visitor = new_visitor()
    merchant = Merchant(id=uuid.uuid4(), name="m", contact_phone="p", token_hash="mh")
    agency = Agency(id=uuid.uuid4(), name="a", jurisdiction=["110100"])
    officer = Officer(
        id=uuid.uuid4(), agency_id=agency.id, name="o", role="tracer", token_hash="oh"
    )
    models.project(events(visitor, merchant, agency, officer))
    visitor_principal = models.directory.principal(visitor.token_hash)
    assert visitor_principal is not None
    assert visitor_principal.id == visitor.id
    merchant_principal = models.directory.principal("mh")
    assert merchant_principal is not None
    assert merchant_principal.role == "merchant"
    officer_principal = models.directory.principal("oh")
    assert officer_principal is not None
    assert (officer_principal.role, officer_principal.agency_id) == ("tracer", agency.id)
    found = models.directory.agency(agency.id)
    assert found is not None
    assert found.jurisdiction == ["110100"]
    assert models.directory.principal("unknown") is None


def test_venues_are_listed_per_merchant_and_rotations_raise_the_code_version(
    models: Models,
) -> None:
    merchant = uuid.uuid4()
    first, second = new_venue(merchant), new_venue(merchant)
    second.rotate_codes()
    models.project(events(first, second, new_venue(uuid.uuid4())))
    assert [v.venue_id for v in models.directory.venues_of(merchant)] == [first.id, second.id]
    rotated = models.directory.venue(second.id)
    assert rotated is not None
    assert rotated.code_version == 2
    assert rotated.capacity == 20
    assert rotated.name == "老王面馆"


def test_an_edit_replaces_a_venues_details_and_keeps_its_codes_and_place(models: Models) -> None:
    merchant, visitor = uuid.uuid4(), new_visitor()
    first, second = new_venue(merchant, max_dwell=60), new_venue(merchant)
    first.rotate_codes()
    first.edit("老李面馆", "2 Road", "noodles", None, 30)
    visit = new_visit(visitor.id, visitor.id, first.id, T0)
    models.project(events(first, second, visitor, visit))
    edited = models.directory.venue(first.id)
    assert edited is not None
    assert (edited.name, edited.address, edited.category) == ("老李面馆", "2 Road", "noodles")
    assert (edited.capacity, edited.max_dwell_minutes, edited.code_version) == (None, 30, 2)
    assert edited.region == "110105"
    assert [v.venue_id for v in models.directory.venues_of(merchant)] == [first.id, second.id]
    # Visits checked in after the edit are closed after the new maximum dwell.
    assert [v.visit_id for v in models.visits.due(T0 + timedelta(minutes=31), 10)] == [visit.id]


def test_visitors_dependents_and_phones_are_found(models: Models) -> None:
    parent = new_visitor(["小明"], phone_index="shared")
    other = new_visitor(phone_index="shared")
    models.project(events(parent, other))
    assert set(models.directory.visitors_by_phone("shared")) == {parent.id, other.id}
    child = parent.dependent_ids[0]
    assert models.directory.guardian_of(child) == parent.id
    assert models.directory.guardian_of(parent.id) == parent.id
    view = models.directory.visitor(parent.id)
    assert view is not None
    assert list(view.dependents.values()) == [child]
    assert models.directory.dependent(view, "小明") == child
    assert models.directory.dependent(view, "小红") is None


def test_the_directory_keeps_no_dependents_name_only_a_pseudonym_of_it(models: Models) -> None:
    # Given two visitors who both registered a child named 小明
    parent, neighbour = new_visitor(["小明"]), new_visitor(["小明"])
    # When they are projected
    models.project(events(parent, neighbour))
    # Then neither view holds the name, and the name's pseudonym differs between the two
    views = [models.directory.visitor(parent.id), models.directory.visitor(neighbour.id)]
    assert views[0] is not None
    assert views[1] is not None
    assert all("小明" not in str(v) for v in views)
    assert set(views[0].dependents).isdisjoint(views[1].dependents)
    assert models.directory.dependent(views[1], "小明") == neighbour.dependent_ids[0]


def test_a_visit_is_open_then_closed(models: Models) -> None:
    visitor, venue = new_visitor(), new_venue(uuid.uuid4(), max_dwell=60)
    visit = new_visit(visitor.id, visitor.id, venue.id, T0)
    models.project(events(visitor, venue, visit))
    assert models.visits.occupancy(venue.id) == 1
    assert [v.visit_id for v in models.visits.open_of(visitor.id)] == [visit.id]
    assert models.visits.due(T0 + timedelta(minutes=59), 10) == []
    assert [v.visit_id for v in models.visits.due(T0 + timedelta(minutes=61), 10)] == [visit.id]
    visit.check_out(T0 + timedelta(minutes=30), CheckoutReason.PAYMENT)
    models.project(events(visit))
    closed = models.visits.get(visit.id)
    assert closed is not None
    assert closed.checked_out_at == T0 + timedelta(minutes=30)
    assert closed.checkout_reason == "payment"
    assert models.visits.occupancy(venue.id) == 0
    assert models.visits.open_of(visitor.id) == []
    assert models.visits.due(T0 + timedelta(hours=2), 10) == []


def test_concurrent_token_lookups_on_the_loop_each_find_their_own_principal(
    models: Models,
) -> None:
    visitors = [new_visitor() for _ in range(3)]
    models.project(events(*visitors))

    async def look_up_all() -> list[Any]:
        try:
            return await asyncio.gather(
                *(models.directory.principal_async(v.token_hash) for v in visitors),
                models.directory.principal_async("no-such-token"),
            )
        finally:
            if models.close_loop_client is not None:
                await models.close_loop_client()

    *found, unknown = asyncio.run(look_up_all())
    assert [(p.role, p.id) for p in found] == [("visitor", v.id) for v in visitors]
    assert unknown is None
    assert models.directory.principal(visitors[0].token_hash) == found[0]


def test_concurrent_looks_each_see_their_own_open_visits_and_visit(models: Models) -> None:
    venue = new_venue(uuid.uuid4())
    family = new_visitor(dependents=["child"])
    child = family.dependent_ids[0]
    alone, idle = new_visitor(), new_visitor()
    own, childs = (
        new_visit(family.id, family.id, venue.id, T0),
        new_visit(child, family.id, venue.id, T0),
    )
    lone = new_visit(alone.id, alone.id, venue.id, T0)
    closed = new_visit(alone.id, alone.id, venue.id, T0 - timedelta(hours=1))
    closed.check_out(T0 - timedelta(minutes=30), CheckoutReason.PAYMENT)
    models.project(events(venue, family, alone, idle, closed, own, childs, lone))

    async def look_all() -> list[Any]:
        try:
            return await asyncio.gather(
                models.visits.look([family.id, child], None),
                models.visits.look([alone.id], lone.id),
                models.visits.look([idle.id], uuid.uuid4()),
            )
        finally:
            if models.close_loop_client is not None:
                await models.close_loop_client()

    seen_family, seen_alone, seen_idle = asyncio.run(look_all())
    assert {p: [v.visit_id for v in vs] for p, vs in seen_family.open_visits.items()} == {
        family.id: [own.id],
        child: [childs.id],
    }
    assert seen_family.visit is None
    assert [v.visit_id for v in seen_alone.open_visits[alone.id]] == [lone.id]
    assert seen_alone.visit is not None
    assert (seen_alone.visit.visit_id, seen_alone.visit.checked_out_at) == (lone.id, None)
    assert seen_idle.open_visits == {idle.id: []}
    assert seen_idle.visit is None


def test_visits_are_found_by_guardian_and_venue_in_a_window(models: Models) -> None:
    parent = new_visitor(["小明"])
    venue = new_venue(uuid.uuid4())
    child = parent.dependent_ids[0]
    first = new_visit(parent.id, parent.id, venue.id, T0)
    second = new_visit(child, parent.id, venue.id, T0 + timedelta(hours=2))
    models.project(events(parent, venue, first, second))
    window = models.visits.of_guardian(parent.id, T0, T0 + timedelta(hours=3))
    assert [v.visit_id for v in window] == [first.id, second.id]
    assert [
        v.visit_id for v in models.visits.of_guardian(parent.id, T0, T0 + timedelta(hours=2))
    ] == [first.id]
    at_venue = models.visits.at_venue(venue.id, T0 + timedelta(minutes=1), T0 + timedelta(days=1))
    assert [v.visit_id for v in at_venue] == [second.id]


def test_visits_projected_out_of_time_order_are_listed_in_time_order(models: Models) -> None:
    visitor = new_visitor([])
    venue = new_venue(uuid.uuid4())
    # Mostly visits arrive in time order; a replayed or late one may not.
    late, early, between, last = (
        new_visit(visitor.id, visitor.id, venue.id, T0 + timedelta(hours=h)) for h in (3, 1, 2, 4)
    )
    models.project(events(visitor, venue, late, early, between, last))
    expected = [early.id, between.id, late.id, last.id]
    window = (T0, T0 + timedelta(hours=5))
    assert [v.visit_id for v in models.visits.of_guardian(visitor.id, *window)] == expected
    assert [v.visit_id for v in models.visits.at_venue(venue.id, *window)] == expected


def test_stays_are_found_by_venue_and_day_and_by_person(models: Models) -> None:
    a, b = new_visitor(), new_visitor()
    venue = new_venue(uuid.uuid4())
    long_stay = new_visit(a.id, a.id, venue.id, T0)  # open: ends at in + 3 h, after midnight
    short = new_visit(b.id, b.id, venue.id, T0 + timedelta(hours=2))
    short.check_out(T0 + timedelta(hours=2, minutes=20), CheckoutReason.SCAN)
    models.project(events(a, b, venue, long_stay, short))
    now = T0 + timedelta(hours=10)
    after_midnight = models.contacts.stays_at(
        venue.id, T0 + timedelta(hours=1, minutes=30), T0 + timedelta(hours=2, minutes=10), now
    )
    assert {s.visit_id for s in after_midnight} == {long_stay.id, short.id}
    open_end = next(s for s in after_midnight if s.visit_id == long_stay.id).end
    assert open_end == T0 + timedelta(hours=3)
    later = models.contacts.stays_at(
        venue.id, T0 + timedelta(hours=4), T0 + timedelta(hours=5), now
    )
    assert later == []
    mine = models.contacts.stays_of(b.id, T0, T0 + timedelta(days=1), now)
    assert [(s.start, s.end) for s in mine] == [(short.checked_in_at, short.checked_out_at)]


def test_a_check_out_refiles_a_stay_under_the_days_it_really_spans(models: Models) -> None:
    a, b = new_visitor(), new_visitor()
    venue = new_venue(uuid.uuid4())
    early = new_visit(a.id, a.id, venue.id, T0)  # planned to end at 02:00, after midnight
    early.check_out(T0 + timedelta(minutes=30), CheckoutReason.SCAN)  # left before midnight
    late = new_visit(b.id, b.id, venue.id, T0)
    late.check_out(T0 + timedelta(hours=26), CheckoutReason.SCAN)  # two days later
    models.project(events(a, b, venue, early, late))
    now = T0 + timedelta(days=3)
    next_night = models.contacts.stays_at(
        venue.id, T0 + timedelta(hours=1, minutes=30), T0 + timedelta(hours=2), now
    )
    assert [s.visit_id for s in next_night] == [late.id]
    day_after = models.contacts.stays_at(
        venue.id, T0 + timedelta(hours=25), T0 + timedelta(hours=25, minutes=30), now
    )
    assert [(s.visit_id, s.end) for s in day_after] == [(late.id, T0 + timedelta(hours=26))]


def test_an_erased_visitor_leaves_no_token_visit_or_stay(models: Models) -> None:
    parent = new_visitor(["小明"], phone_index="erase-me")
    venue = new_venue(uuid.uuid4())
    child = parent.dependent_ids[0]
    own = new_visit(parent.id, parent.id, venue.id, T0)
    childs = new_visit(child, parent.id, venue.id, T0)
    models.project(events(parent, venue, own, childs))
    parent.erase(T0 + timedelta(hours=1))
    models.project(events(parent))
    assert models.directory.principal(parent.token_hash) is None
    assert models.directory.visitor(parent.id) is None
    assert models.directory.visitors_by_phone("erase-me") == []
    assert models.directory.guardian_of(child) is None
    assert models.visits.get(own.id) is None
    assert models.visits.get(childs.id) is None
    assert models.visits.occupancy(venue.id) == 0
    now = T0 + timedelta(hours=1)
    assert models.contacts.stays_at(venue.id, T0, now, now) == []


def test_exposures_are_found_by_venue_and_overlap(models: Models) -> None:
    venue_id = uuid.uuid4()
    notice = ExposureNotice(
        id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        venue_id=venue_id,
        start=T0,
        end=T0 + timedelta(hours=1),
        declared_by=uuid.uuid4(),
        declared_at=T0 + timedelta(days=1),
        notified=3,
    )
    models.project(events(notice))
    assert [
        e.exposure_id for e in models.exposures.at_venue(venue_id, T0 - timedelta(hours=1), T0)
    ] == [notice.id]
    assert (
        models.exposures.at_venue(venue_id, T0 + timedelta(hours=2), T0 + timedelta(hours=3)) == []
    )


def test_retention_drops_visits_that_began_before_the_cutoff(models: Models) -> None:
    visitor, venue = new_visitor(), new_venue(uuid.uuid4())
    old = new_visit(visitor.id, visitor.id, venue.id, T0 - timedelta(days=30))
    new = new_visit(visitor.id, visitor.id, venue.id, T0)
    models.project(events(visitor, venue, old, new))
    models.shred_days_before((T0 - timedelta(days=1)).date())
    assert models.visits.drop_before(T0 - timedelta(days=1)) == 1
    models.contacts.drop_before(T0 - timedelta(days=1))  # the application trims both
    assert models.visits.get(old.id) is None
    assert models.visits.get(new.id) is not None
    assert models.visits.occupancy(venue.id) == 1
    stays = models.contacts.stays_of(
        visitor.id, T0 - timedelta(days=40), T0 + timedelta(days=1), T0
    )
    assert [s.visit_id for s in stays] == [new.id]


def test_the_redis_projection_applies_each_event_once(
    redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    projector = RedisProjector(redis_client, records_of(redis_prefix), 180)
    visitor, venue = new_visitor(), new_venue(uuid.uuid4())
    visit = new_visit(visitor.id, visitor.id, venue.id, T0)
    batch = list(enumerate(events(visitor, venue, visit), start=1))
    assert projector.apply_batch(batch) == 3
    assert projector.apply_batch(batch) == 0  # replayed: the position says it was applied
    assert projector.position() == 3
    records = records_of(redis_prefix)
    log = Log(sqlite_recorder(tmp_path / "events.db"), tmp_path)
    history = MemoryHistory(log.recorder, log.mapper, 180)
    assert RedisVisitLog(redis_client, records, projector, history).occupancy(venue.id) == 1


def test_batched_stays_answer_each_window_as_its_single_lookup(models: Models) -> None:
    a, b = new_visitor(), new_visitor()
    venue, other = new_venue(uuid.uuid4()), new_venue(uuid.uuid4())
    first = new_visit(a.id, a.id, venue.id, T0)  # open: ends at in + 3 h, after midnight
    second = new_visit(b.id, b.id, venue.id, T0 + timedelta(hours=2))
    second.check_out(T0 + timedelta(hours=2, minutes=20), CheckoutReason.SCAN)
    third = new_visit(a.id, a.id, other.id, T0 + timedelta(hours=5))
    models.project(events(a, b, venue, other, first, second, third))
    now = T0 + timedelta(hours=10)
    hours = [T0 + timedelta(hours=h) for h in range(12)]
    at = [(venue.id, hours[1], hours[2]), (other.id, hours[0], hours[1]), (other.id, hours[5], now)]
    of = [(a.id, T0, now), (b.id, hours[3], now), (b.id, T0, now)]
    at_many = models.contacts.stays_at_many(at, now)
    of_many = models.contacts.stays_of_many(of, now)
    assert at_many == [models.contacts.stays_at(*window, now) for window in at]
    assert of_many == [models.contacts.stays_of(*window, now) for window in of]
    assert [[s.visit_id for s in found] for found in at_many] == [
        [first.id, second.id],
        [],
        [third.id],
    ]
    assert [len(found) for found in of_many] == [2, 0, 1]
