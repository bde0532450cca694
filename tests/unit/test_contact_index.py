"""MemoryContactIndex against a plain list of visits filtered by brute force."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.tracing import Stay
from infrastructure.readmodels.memory.tracing import MemoryContactIndex

T0 = datetime(2026, 3, 2, tzinfo=UTC)
VENUES = [UUID(int=0xA000 + n) for n in range(3)]
PEOPLE = [UUID(int=0xB000 + n) for n in range(5)]
VISITS = [UUID(int=0xC000 + n) for n in range(12)]
THREE_HOURS = timedelta(hours=3)


def at(minutes: int) -> datetime:
    """A time on the test clock, minutes after T0."""
    return T0 + timedelta(minutes=minutes)


@dataclass
class Visit:
    """The reference model's visit: end is None while open."""

    visitor_id: UUID
    venue_id: UUID
    start: datetime
    end: datetime | None
    max_dwell: timedelta

    def stay(self, visit_id: UUID, now: datetime) -> Stay:
        """The visit as a stay, resolved at now by the rule's words."""
        if self.end is not None:
            end = max(self.end, self.start)
        else:
            end = max(self.start, min(self.start + self.max_dwell, now))
        return Stay(visit_id, self.visitor_id, self.venue_id, self.start, end)


class Reference:
    """The same operations as the index, on a dict, answered by scanning everything."""

    def __init__(self) -> None:
        self.visits: dict[UUID, Visit] = {}

    def check_in(
        self, visit_id: UUID, person: UUID, venue: UUID, start: datetime, max_dwell: timedelta
    ) -> None:
        self.visits[visit_id] = Visit(person, venue, start, None, max_dwell)

    def check_out(self, visit_id: UUID, end: datetime) -> None:
        if visit_id in self.visits:
            self.visits[visit_id].end = end

    def forget_visit(self, visit_id: UUID) -> None:
        self.visits.pop(visit_id, None)

    def forget_visitor(self, person: UUID) -> None:
        self.visits = {k: v for k, v in self.visits.items() if v.visitor_id != person}

    def drop_before(self, cutoff: datetime) -> int:
        kept = {k: v for k, v in self.visits.items() if v.start >= cutoff}
        dropped = len(self.visits) - len(kept)
        self.visits = kept
        return dropped

    def stays(self, now: datetime) -> list[Stay]:
        return [visit.stay(visit_id, now) for visit_id, visit in self.visits.items()]


minutes = st.integers(0, 3 * 24 * 4).map(lambda n: n * 15)  # three days on a 15-minute grid
moments = minutes.map(at)
dwells = st.sampled_from([timedelta(0), timedelta(minutes=30), THREE_HOURS, timedelta(hours=30)])
closed_visits = st.tuples(
    st.sampled_from(VISITS),
    st.sampled_from(PEOPLE),
    st.sampled_from(VENUES),
    minutes,
    st.integers(-1, 40).map(lambda n: n * 45),  # -1: a check-out earlier than the check-in
    dwells,
).map(lambda v: ("visit", v[0], v[1], v[2], at(v[3]), v[5], at(v[3] + v[4])))
operations = st.one_of(
    st.tuples(
        st.just("check_in"),
        st.sampled_from(VISITS),
        st.sampled_from(PEOPLE),
        st.sampled_from(VENUES),
        moments,
        dwells,
    ),
    closed_visits,
    st.tuples(st.just("check_out"), st.sampled_from(VISITS), moments),
    st.tuples(st.just("forget_visit"), st.sampled_from(VISITS)),
    st.tuples(st.just("forget_visitor"), st.sampled_from(PEOPLE)),
    st.tuples(st.just("drop_before"), moments),
)
windows = st.tuples(moments, moments).map(sorted)


def apply(index: MemoryContactIndex, reference: Reference, op: tuple[object, ...]) -> None:
    """Run one operation on both, and compare what drop_before reports."""
    name, *args = op
    if name == "visit":  # a check-in and its check-out
        visit_id, person, venue, start, dwell, end = args
        apply(index, reference, ("check_in", visit_id, person, venue, start, dwell))
        apply(index, reference, ("check_out", visit_id, end))
    elif name == "drop_before":
        (cutoff,) = args
        assert isinstance(cutoff, datetime)
        assert index.drop_before(cutoff) == reference.drop_before(cutoff)
    else:
        assert isinstance(name, str)
        getattr(index, name)(*args)
        getattr(reference, name)(*args)


def by_id(stays: list[Stay]) -> list[Stay]:
    """Stays in visit id order, duplicates kept, to compare answers as multisets."""
    return sorted(stays, key=lambda s: s.visit_id)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(operations, max_size=30),
    st.lists(st.tuples(st.sampled_from(VENUES), windows, moments), min_size=1, max_size=5),
    st.lists(st.tuples(st.sampled_from(PEOPLE), windows, moments), min_size=1, max_size=3),
)
def test_lookups_answer_what_a_scan_of_every_visit_answers(
    ops: list[tuple[object, ...]],
    venue_queries: list[tuple[UUID, list[datetime], datetime]],
    person_queries: list[tuple[UUID, list[datetime], datetime]],
) -> None:
    index, reference = MemoryContactIndex(), Reference()
    for op in ops:
        apply(index, reference, op)
    assert len(index) == len(reference.visits)
    for venue, (t0, t1), now in venue_queries:
        expected = [
            s for s in reference.stays(now) if s.venue_id == venue and s.start <= t1 and s.end >= t0
        ]
        assert by_id(index.stays_at(venue, t0, t1, now)) == by_id(expected)
    for person, (t0, t1), now in person_queries:
        expected = [
            s
            for s in reference.stays(now)
            if s.visitor_id == person and s.start <= t1 and s.end >= t0
        ]
        expected.sort(key=lambda s: (s.start, s.visit_id))
        assert index.stays_of(person, t0, t1, now) == expected


def ids(stays: list[Stay]) -> list[UUID]:
    """The visit ids of the stays, in order."""
    return [s.visit_id for s in stays]


def test_a_stay_across_midnight_is_found_once_from_either_day() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(22 * 60), THREE_HOURS)
    index.check_out(VISITS[0], at(26 * 60))
    now = at(10_000)
    assert ids(index.stays_at(VENUES[0], at(0), at(48 * 60), now)) == [VISITS[0]]
    assert ids(index.stays_at(VENUES[0], at(25 * 60), at(25 * 60), now)) == [VISITS[0]]
    assert ids(index.stays_at(VENUES[0], at(26 * 60), at(40 * 60), now)) == [VISITS[0]]
    assert index.stays_at(VENUES[0], at(26 * 60 + 1), at(40 * 60), now) == []


def test_an_open_visit_is_resolved_with_the_now_of_the_lookup() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(60), THREE_HOURS)
    (early,) = index.stays_at(VENUES[0], at(0), at(1000), at(90))
    (late,) = index.stays_of(PEOPLE[0], at(0), at(1000), at(1000))
    assert (early.end, late.end) == (at(90), at(240))
    assert index.stays_at(VENUES[0], at(100), at(200), at(90)) == []


def test_an_open_visit_spanning_days_is_found_on_each_day_up_to_max_dwell() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(60), timedelta(hours=50))
    now = at(10_000)
    assert ids(index.stays_at(VENUES[0], at(50 * 60), at(50 * 60), now)) == [VISITS[0]]
    assert index.stays_at(VENUES[0], at(51 * 60 + 1), at(80 * 60), now) == []


def test_a_check_out_later_than_max_dwell_is_found_until_the_check_out() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(60), THREE_HOURS)
    index.check_out(VISITS[0], at(30 * 60))
    (found,) = index.stays_at(VENUES[0], at(29 * 60), at(29 * 60), at(10_000))
    assert found.end == at(30 * 60)


def test_a_check_out_before_the_check_in_closes_the_visit_at_its_start() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(60), THREE_HOURS)
    index.check_out(VISITS[0], at(30))
    (found,) = index.stays_of(PEOPLE[0], at(0), at(100), at(10_000))
    assert (found.start, found.end) == (at(60), at(60))


def test_checking_in_a_known_visit_again_replaces_it() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(60), THREE_HOURS)
    index.check_in(VISITS[0], PEOPLE[0], VENUES[1], at(600), THREE_HOURS)
    now = at(10_000)
    assert index.stays_at(VENUES[0], at(0), at(10_000), now) == []
    assert ids(index.stays_of(PEOPLE[0], at(0), at(10_000), now)) == [VISITS[0]]
    assert len(index) == 1


def test_a_check_out_of_an_unknown_visit_is_ignored() -> None:
    index = MemoryContactIndex()
    index.check_out(VISITS[0], at(60))
    assert len(index) == 0


def test_forgetting_a_visitor_drops_all_their_stays_and_nobody_elses() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(60), THREE_HOURS)
    index.check_in(VISITS[1], PEOPLE[0], VENUES[1], at(2000), THREE_HOURS)
    index.check_in(VISITS[2], PEOPLE[1], VENUES[0], at(60), THREE_HOURS)
    index.forget_visitor(PEOPLE[0])
    now = at(10_000)
    assert index.stays_of(PEOPLE[0], at(0), now, now) == []
    assert ids(index.stays_at(VENUES[0], at(0), now, now)) == [VISITS[2]]
    assert index.stays_at(VENUES[1], at(0), now, now) == []


def test_forgetting_a_visit_drops_only_that_visit() -> None:
    index = MemoryContactIndex()
    index.check_in(VISITS[0], PEOPLE[0], VENUES[0], at(60), THREE_HOURS)
    index.check_in(VISITS[1], PEOPLE[0], VENUES[0], at(70), THREE_HOURS)
    index.forget_visit(VISITS[0])
    index.forget_visit(VISITS[5])
    assert ids(index.stays_of(PEOPLE[0], at(0), at(1000), at(1000))) == [VISITS[1]]


def test_drop_before_drops_only_the_stays_that_started_before_the_cutoff() -> None:
    index = MemoryContactIndex()
    for n, start in enumerate([60, 24 * 60 + 59, 24 * 60 + 60, 3000]):
        index.check_in(VISITS[n], PEOPLE[0], VENUES[0], at(start), THREE_HOURS)
    assert index.drop_before(at(24 * 60 + 60)) == 2
    now = at(10_000)
    assert ids(index.stays_at(VENUES[0], at(0), now, now)) == [VISITS[2], VISITS[3]]


def test_naive_times_are_refused() -> None:
    index = MemoryContactIndex()
    naive = at(60).replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        index.check_in(VISITS[0], PEOPLE[0], VENUES[0], naive, THREE_HOURS)


def test_check_ins_from_many_threads_are_all_indexed() -> None:
    index = MemoryContactIndex()

    def check_in_many(worker: int) -> None:
        for n in range(200):
            visit = UUID(int=worker * 1000 + n)
            index.check_in(visit, PEOPLE[worker], VENUES[n % 3], at(n * 7), THREE_HOURS)
            if n % 2:
                index.check_out(visit, at(n * 7 + 30))

    threads = [threading.Thread(target=check_in_many, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    now = at(100_000)
    assert len(index) == 800
    assert sum(len(index.stays_at(v, at(0), now, now)) for v in VENUES) == 800
