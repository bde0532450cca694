"""The close-contact rule against a brute-force oracle written from the rule's words."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.tracing import (
    Contact,
    ContactRule,
    Exposure,
    Stay,
    close_contacts,
    effective_end,
    exposure_of,
    one_by_one,
)
from infrastructure.readmodels.memory.tracing import MemoryContactIndex

T0 = datetime(2026, 3, 2, tzinfo=UTC)
STEP = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)
VENUES = [UUID(int=0xA000 + n) for n in range(3)]
PEOPLE = [UUID(int=0xB000 + n) for n in range(7)]

Lookup = Callable[[UUID, datetime, datetime], Iterable[Stay]]
ExposureRow = tuple[UUID, UUID, datetime, datetime, timedelta]
ContactRow = tuple[UUID, int, tuple[ExposureRow, ...]]


def at(minutes: int) -> datetime:
    """A time on the test clock, minutes after T0."""
    return T0 + timedelta(minutes=minutes)


_visit_ids = iter(range(1, 10**9))


def stay(person: int, venue: int, start: int, end: int) -> Stay:
    """A stay of PEOPLE[person] at VENUES[venue] from minute start to minute end."""
    return Stay(UUID(int=next(_visit_ids)), PEOPLE[person], VENUES[venue], at(start), at(end))


# --- the oracle: every pair, straight from DESIGN.md's words, in integer seconds ------------


def _seconds(moment: datetime) -> int:
    return int((moment - T0).total_seconds())


def oracle_exposure(index: Stay, other: Stay, rule: ContactRule) -> ExposureRow | None:
    """B is exposed to A: same venue, another person, overlap with A's window >= min_overlap."""
    if index.venue_id != other.venue_id or index.visitor_id == other.visitor_id:
        return None
    window = (
        _seconds(index.start) - int(rule.before.total_seconds()),
        _seconds(index.end) + int(rule.after.total_seconds()),
    )
    visit = (_seconds(other.start), _seconds(other.end))
    lo, hi = max(window[0], visit[0]), min(window[1], visit[1])
    if hi < lo:  # the two closed intervals share no instant
        return None
    if hi - lo < rule.min_overlap.total_seconds():
        return None
    return (
        other.visit_id,
        other.venue_id,
        T0 + timedelta(seconds=lo),
        T0 + timedelta(seconds=hi),
        timedelta(seconds=hi - lo),
    )


def _rows(found: dict[UUID, set[ExposureRow]], depth: int) -> list[ContactRow]:
    return [
        (person, depth, tuple(sorted(rows, key=lambda r: (r[2], r[3], r[1], r[0]))))
        for person, rows in found.items()
    ]


def oracle(
    everything: list[Stay],
    index_stays: list[Stay],
    index_people: frozenset[UUID],
    rule: ContactRule,
    depth: int,
    until: datetime | None,
) -> list[ContactRow]:
    """Close contacts by brute force over all pairs of stays."""
    first: dict[UUID, set[ExposureRow]] = {}
    for a in index_stays:
        for b in everything:
            row = oracle_exposure(a, b, rule)
            if row is not None and b.visitor_id not in index_people:
                first.setdefault(b.visitor_id, set()).add(row)
    second: dict[UUID, set[ExposureRow]] = {}
    if depth == 2:
        for contact, rows in first.items():
            exposed_at = min(row[2] for row in rows)
            for own in everything:
                if own.visitor_id != contact or own.end <= exposed_at:
                    continue
                if until is not None and own.start > until:
                    continue
                clipped = Stay(
                    own.visit_id, contact, own.venue_id, max(own.start, exposed_at), own.end
                )
                for b in everything:
                    row = oracle_exposure(clipped, b, rule)
                    if row is None or b.visitor_id in index_people or b.visitor_id in first:
                        continue
                    second.setdefault(b.visitor_id, set()).add(row)
    return sorted(_rows(first, 1) + _rows(second, 2), key=lambda c: (c[1], c[0]))


def as_rows(contacts: list[Contact]) -> list[ContactRow]:
    """Contacts as plain tuples, to compare with the oracle."""
    return [
        (
            c.visitor_id,
            c.depth,
            tuple((e.visit_id, e.venue_id, e.start, e.end, e.overlap) for e in c.exposures),
        )
        for c in contacts
    ]


# --- lookups --------------------------------------------------------------------------------


def exact_lookups(everything: list[Stay]) -> tuple[Lookup, Lookup]:
    """Lookups that return exactly the stays intersecting the window, nothing more."""

    def stays_at(venue: UUID, t0: datetime, t1: datetime) -> list[Stay]:
        assert t0 <= t1
        return [s for s in everything if s.venue_id == venue and s.start <= t1 and s.end >= t0]

    def stays_of(person: UUID, t0: datetime, t1: datetime) -> list[Stay]:
        assert t0 <= t1
        return [s for s in everything if s.visitor_id == person and s.start <= t1 and s.end >= t0]

    return stays_at, stays_of


def sloppy_lookups(everything: list[Stay]) -> tuple[Lookup, Lookup]:
    """Lookups that return every stay there is, twice: the caller must filter."""

    def anything(_key: UUID, _t0: datetime, _t1: datetime) -> list[Stay]:
        return everything + everything[::-1]

    return anything, anything


# --- random worlds --------------------------------------------------------------------------

# 20:00 to 06:00 on a 15-minute grid: busy enough for collisions, and across midnight.
grid_minutes = st.integers(0, 40).map(lambda n: 20 * 60 + n * 15)
durations = st.sampled_from([timedelta(0), STEP, 2 * STEP, 4 * STEP, timedelta(hours=3)])
rules = st.builds(
    ContactRule,
    before=durations,
    after=durations,
    min_overlap=st.just(timedelta(0)) | durations,  # zero often: it makes touches count
)


@st.composite
def stays(draw: st.DrawFn) -> list[Stay]:
    """Visits of few people at few venues on a 15-minute grid: collisions and touches abound."""
    out = []
    for _ in range(draw(st.integers(2, 24))):
        start = draw(grid_minutes)
        length = draw(st.one_of(st.integers(0, 8), st.sampled_from([40, 100]))) * 15
        out.append(
            stay(
                draw(st.integers(0, len(PEOPLE) - 1)),
                draw(st.integers(0, len(VENUES) - 1)),
                start,
                start + length,
            )
        )
    return out


@dataclass(frozen=True)
class Case:
    """A random tracing question."""

    everything: list[Stay]
    index_stays: list[Stay]
    index_people: frozenset[UUID]
    rule: ContactRule
    depth: int
    until: datetime | None


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A world, some index people with some of their stays, a rule, a depth and a horizon."""
    everything = draw(stays())
    index_people = frozenset(draw(st.sets(st.sampled_from(PEOPLE), min_size=1, max_size=2)))
    own = [s for s in everything if s.visitor_id in index_people]
    index_stays = draw(st.lists(st.sampled_from(own), min_size=1, unique=True)) if own else []
    until = draw(st.none() | grid_minutes.map(at))
    return Case(
        everything, index_stays, index_people, draw(rules), draw(st.sampled_from([1, 2])), until
    )


def expected(case: Case) -> list[ContactRow]:
    """The oracle's answer to the case."""
    return oracle(
        case.everything, case.index_stays, case.index_people, case.rule, case.depth, case.until
    )


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def traced(case: Case, lookups: tuple[Lookup, Lookup]) -> list[Contact]:
    """close_contacts for the case, through the given lookups."""
    stays_at, stays_of = lookups
    return close_contacts(
        case.index_stays,
        case.index_people,
        case.rule,
        case.depth,
        stays_at_many=one_by_one(stays_at),
        stays_of_many=one_by_one(stays_of),
        until=case.until,
    )


@SETTINGS
@given(cases())
def test_close_contacts_agree_with_the_oracle_through_exact_lookups(case: Case) -> None:
    assert as_rows(traced(case, exact_lookups(case.everything))) == expected(case)


@SETTINGS
@given(cases())
def test_close_contacts_filter_whatever_extra_the_lookups_return(case: Case) -> None:
    assert as_rows(traced(case, sloppy_lookups(case.everything))) == expected(case)


@st.composite
def open_worlds(draw: st.DrawFn) -> tuple[list[tuple[Stay, bool, timedelta]], datetime]:
    """Visits that may still be open (with their venue's max dwell), and the time of asking."""
    now = at(draw(grid_minutes))
    visits = []
    for s in draw(stays()):
        is_open = draw(st.booleans())
        max_dwell = draw(st.sampled_from([timedelta(0), 2 * STEP, timedelta(hours=3)]))
        visits.append((s, is_open, max_dwell))
    return visits, now


@SETTINGS
@given(open_worlds(), st.data())
def test_close_contacts_agree_with_the_oracle_through_the_memory_index(
    world: tuple[list[tuple[Stay, bool, timedelta]], datetime], data: st.DataObject
) -> None:
    visits, now = world
    index = MemoryContactIndex()
    resolved = []
    for s, is_open, max_dwell in visits:
        index.check_in(s.visit_id, s.visitor_id, s.venue_id, s.start, max_dwell)
        if is_open:
            end = max(s.start, min(s.start + max_dwell, now))
        else:
            index.check_out(s.visit_id, s.end)
            end = s.end
        resolved.append(Stay(s.visit_id, s.visitor_id, s.venue_id, s.start, end))
    people = frozenset(data.draw(st.sets(st.sampled_from(PEOPLE), min_size=1, max_size=2)))
    case = Case(
        resolved,
        [s for s in resolved if s.visitor_id in people],
        people,
        data.draw(rules),
        data.draw(st.sampled_from([1, 2])),
        data.draw(st.none() | st.just(now)),
    )
    lookups: tuple[Lookup, Lookup] = (
        lambda venue, t0, t1: index.stays_at(venue, t0, t1, now),
        lambda person, t0, t1: index.stays_of(person, t0, t1, now),
    )
    assert as_rows(traced(case, lookups)) == expected(case)


# --- examples -------------------------------------------------------------------------------


def contacts_of(
    everything: list[Stay],
    index_person: int,
    rule: ContactRule,
    depth: int = 1,
) -> dict[UUID, int]:
    """Who is a contact of PEOPLE[index_person] (all their stays), and at what depth."""
    person = PEOPLE[index_person]
    stays_at, stays_of = exact_lookups(everything)
    found = close_contacts(
        [s for s in everything if s.visitor_id == person],
        frozenset({person}),
        rule,
        depth,
        stays_at_many=one_by_one(stays_at),
        stays_of_many=one_by_one(stays_of),
    )
    return {c.visitor_id: c.depth for c in found}


def test_touching_intervals_count_only_when_min_overlap_is_zero() -> None:
    world = [stay(0, 0, 0, 60), stay(1, 0, 60, 120)]
    assert contacts_of(world, 0, ContactRule(after=timedelta(0), min_overlap=timedelta(0))) == {
        PEOPLE[1]: 1
    }
    assert contacts_of(world, 0, ContactRule(after=timedelta(0), min_overlap=MINUTE)) == {}


def test_a_zero_length_stay_in_the_window_counts_only_when_min_overlap_is_zero() -> None:
    world = [stay(0, 0, 0, 60), stay(1, 0, 30, 30)]
    assert contacts_of(world, 0, ContactRule(min_overlap=timedelta(0))) == {PEOPLE[1]: 1}
    assert contacts_of(world, 0, ContactRule(min_overlap=MINUTE)) == {}


def test_an_overlap_of_exactly_min_overlap_counts_and_one_second_less_does_not() -> None:
    index = stay(0, 0, 0, 60)
    rule = ContactRule(after=timedelta(0), min_overlap=timedelta(minutes=15))
    exposure = exposure_of(index, stay(1, 0, 45, 90), rule)
    assert exposure is not None
    assert (exposure.start, exposure.end, exposure.overlap) == (at(45), at(60), 15 * MINUTE)
    late = Stay(UUID(int=1), PEOPLE[1], VENUES[0], at(45) + timedelta(seconds=1), at(90))
    assert exposure_of(index, late, rule) is None


def test_air_lingers_after_the_index_person_leaves_for_the_after_margin() -> None:
    world = [stay(0, 0, 0, 60), stay(1, 0, 70, 120), stay(2, 0, 90, 120)]
    assert contacts_of(world, 0, ContactRule()) == {PEOPLE[1]: 1}


def test_the_before_margin_reaches_people_who_left_just_before_the_index_arrived() -> None:
    world = [stay(0, 0, 60, 120), stay(1, 0, 0, 50)]
    assert contacts_of(world, 0, ContactRule(before=timedelta(minutes=30))) == {PEOPLE[1]: 1}
    assert contacts_of(world, 0, ContactRule()) == {}


def test_the_same_hours_at_another_venue_make_no_contact() -> None:
    assert contacts_of([stay(0, 0, 0, 60), stay(1, 1, 0, 60)], 0, ContactRule()) == {}


def test_a_visitor_is_never_their_own_contact() -> None:
    index = stay(0, 0, 0, 60)
    assert exposure_of(index, stay(0, 0, 0, 60), ContactRule(min_overlap=timedelta(0))) is None
    assert contacts_of([index, stay(0, 0, 30, 90)], 0, ContactRule()) == {}


def test_an_open_visit_ends_at_max_dwell_or_now_whichever_is_earlier() -> None:
    three_hours = timedelta(hours=3)
    assert effective_end(at(0), None, three_hours, at(60)) == at(60)
    assert effective_end(at(0), None, three_hours, at(600)) == at(180)
    assert effective_end(at(0), at(20), three_hours, at(600)) == at(20)
    assert effective_end(at(60), None, three_hours, at(0)) == at(60)


def test_depth_two_counts_only_the_contacts_stays_after_their_first_exposure() -> None:
    world = [
        stay(0, 0, 600, 660),  # the index person
        stay(1, 0, 600, 660),  # a contact, exposed from 600
        stay(1, 1, 0, 120),  # the contact earlier elsewhere: not infectious yet
        stay(2, 1, 0, 120),
        stay(1, 2, 700, 760),  # the contact later elsewhere: infectious
        stay(3, 2, 700, 760),
    ]
    assert contacts_of(world, 0, ContactRule(), depth=2) == {PEOPLE[1]: 1, PEOPLE[3]: 2}


def test_depth_two_clips_the_exposure_stay_to_start_at_the_exposure() -> None:
    world = [
        stay(0, 0, 300, 360),  # the index person arrives late
        stay(1, 0, 0, 400),  # a contact, exposed from 300 only
        stay(2, 0, 0, 100),  # met the contact long before the exposure
        stay(3, 0, 370, 400),  # met the contact after the exposure, the index person never
    ]
    found = contacts_of(world, 0, ContactRule(after=timedelta(0)), depth=2)
    assert found == {PEOPLE[1]: 1, PEOPLE[3]: 2}


def test_a_person_is_listed_once_at_the_lowest_depth_and_index_persons_never() -> None:
    world = [stay(0, 0, 0, 60), stay(1, 0, 0, 60), stay(2, 0, 0, 60), stay(0, 1, 100, 160)]
    world.append(stay(1, 1, 100, 160))  # the contact meets the index person again
    found = contacts_of(world, 0, ContactRule(), depth=2)
    assert found == {PEOPLE[1]: 1, PEOPLE[2]: 1}


def test_depth_two_ignores_the_contacts_stays_that_start_after_until() -> None:
    world = [stay(0, 0, 0, 60), stay(1, 0, 0, 60), stay(1, 1, 200, 260), stay(2, 1, 200, 260)]
    stays_at, stays_of = exact_lookups(world)

    def trace(until: datetime | None) -> list[UUID]:
        found = close_contacts(
            world[:1],
            frozenset({PEOPLE[0]}),
            ContactRule(),
            2,
            stays_at_many=one_by_one(stays_at),
            stays_of_many=one_by_one(stays_of),
            until=until,
        )
        return [c.visitor_id for c in found]

    assert trace(None) == [PEOPLE[1], PEOPLE[2]]
    assert trace(at(200)) == [PEOPLE[1], PEOPLE[2]]
    assert trace(at(199)) == [PEOPLE[1]]


def test_exposures_are_sorted_by_start_and_contacts_by_depth_then_visitor() -> None:
    world = [
        stay(0, 0, 500, 560),
        stay(0, 1, 0, 60),
        stay(3, 0, 500, 560),
        stay(3, 1, 0, 60),
        stay(1, 1, 0, 60),
        stay(2, 2, 700, 760),
        stay(3, 2, 700, 760),
    ]
    stays_at, stays_of = exact_lookups(world)
    found = close_contacts(
        world[:2],
        frozenset({PEOPLE[0]}),
        ContactRule(),
        2,
        stays_at_many=one_by_one(stays_at),
        stays_of_many=one_by_one(stays_of),
    )
    assert [(c.visitor_id, c.depth) for c in found] == [
        (PEOPLE[1], 1),
        (PEOPLE[3], 1),
        (PEOPLE[2], 2),
    ]
    assert [e.start for e in found[1].exposures] == [at(0), at(500)]


def test_a_depth_other_than_one_or_two_is_refused() -> None:
    stays_at, stays_of = exact_lookups([])
    with pytest.raises(ValueError, match="depth"):
        close_contacts(
            [],
            frozenset(),
            ContactRule(),
            3,
            stays_at_many=one_by_one(stays_at),
            stays_of_many=one_by_one(stays_of),
        )


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ContactRule(before=-MINUTE)


def test_a_stay_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Stay(UUID(int=1), PEOPLE[0], VENUES[0], at(10), at(5))


def test_identical_exposures_from_two_index_persons_are_listed_once() -> None:
    world = [stay(0, 0, 0, 60), stay(1, 0, 0, 60), stay(2, 0, 0, 60)]
    stays_at, stays_of = exact_lookups(world)
    found = close_contacts(
        world[:2],
        frozenset(PEOPLE[:2]),
        ContactRule(),
        1,
        stays_at_many=one_by_one(stays_at),
        stays_of_many=one_by_one(stays_of),
    )
    assert [(c.visitor_id, len(c.exposures)) for c in found] == [(PEOPLE[2], 1)]


def test_an_exposure_names_the_contacts_visit_and_the_overlap() -> None:
    index, other = stay(0, 0, 0, 60), stay(1, 0, 30, 120)
    assert exposure_of(index, other, ContactRule()) == Exposure(
        other.visit_id, VENUES[0], at(30), at(90), timedelta(minutes=60)
    )


def test_a_stay_that_ends_before_it_starts_is_refused_and_equal_stays_are_equal() -> None:
    ids = (UUID(int=1), UUID(int=2), UUID(int=3))
    with pytest.raises(ValueError, match="cannot end before it starts"):
        Stay(*ids, T0, T0 - timedelta(seconds=1))
    assert Stay(*ids, T0, T0) == Stay(*ids, T0, T0)
    assert len({Stay(*ids, T0, T0), Stay(*ids, T0, T0)}) == 1
