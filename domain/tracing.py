"""The close-contact rule: pure functions over stays (visits with a resolved end)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeAlias
from uuid import UUID

import msgspec

ZERO = timedelta(0)
# The far future, for a depth-2 search that has no horizon; never shifted by a duration.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)

# A lookup window: a venue's (or a person's) id, and the interval [t0, t1] asked for.
Window: TypeAlias = "tuple[UUID, datetime, datetime]"
StayLookup: TypeAlias = "Callable[[UUID, datetime, datetime], Iterable[Stay]]"
# Many windows in one call (one round trip to a store): one answer per window, in their order.
StaysLookup: TypeAlias = "Callable[[Sequence[Window]], Sequence[Iterable[Stay]]]"


class Stay(msgspec.Struct, frozen=True, gc=False):
    """One visit of one visitor at one venue, from start to a resolved end (aware UTC).

    Not tracked by the garbage collector (ids and times only, so in no reference cycle): the
    contact index keeps one per closed visit.
    """

    visit_id: UUID
    visitor_id: UUID
    venue_id: UUID
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a stay cannot end before it starts")


def effective_end(
    checked_in_at: datetime,
    checked_out_at: datetime | None,
    max_dwell: timedelta,
    now: datetime,
) -> datetime:
    """When a visit ends: its check-out, else the earlier of in + max_dwell and now."""
    if checked_out_at is not None:
        return max(checked_out_at, checked_in_at)
    return max(checked_in_at, min(checked_in_at + max_dwell, now))


@dataclass(frozen=True, slots=True)
class ContactRule:
    """How close a contact is: the index window's margins and the least overlap that counts."""

    before: timedelta = ZERO
    after: timedelta = timedelta(minutes=30)
    min_overlap: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if min(self.before, self.after, self.min_overlap) < ZERO:
            raise ValueError("contact rule durations cannot be negative")


@dataclass(frozen=True, slots=True)
class Exposure:
    """Part of a contact's visit (visit_id) that overlaps an index window at one venue."""

    visit_id: UUID
    venue_id: UUID
    start: datetime
    end: datetime
    overlap: timedelta


@dataclass(frozen=True, slots=True)
class Contact:
    """A visitor found by tracing, at depth 1 or 2, with their exposures sorted by start."""

    visitor_id: UUID
    depth: int
    exposures: tuple[Exposure, ...] = field(default=())


def exposure_of(index: Stay, other: Stay, rule: ContactRule) -> Exposure | None:
    """The exposure of `other` to the index stay under `rule`, or None if it is no contact.

    The index window is the closed interval [index.start - before, index.end + after]; the
    overlap with [other.start, other.end] counts when it lasts at least min_overlap. Intervals
    that only touch overlap for 0 s, so they count only when min_overlap is 0 (likewise a
    zero-length stay inside the window). Nobody is a contact of themself.
    """
    if other.venue_id != index.venue_id or other.visitor_id == index.visitor_id:
        return None
    start = max(index.start - rule.before, other.start)
    end = min(index.end + rule.after, other.end)
    if end < start:
        return None
    overlap = end - start
    if overlap < rule.min_overlap:
        return None
    return Exposure(other.visit_id, other.venue_id, start, end, overlap)


def one_by_one(lookup: StayLookup) -> StaysLookup:
    """A batched lookup that asks `lookup` once per window (where a lookup costs no trip)."""

    def many(windows: Sequence[Window]) -> list[Iterable[Stay]]:
        return [lookup(*window) for window in windows]

    return many


def _exposure_order(exposure: Exposure) -> tuple[datetime, datetime, UUID, UUID]:
    return (exposure.start, exposure.end, exposure.venue_id, exposure.visit_id)


def _expose(
    index_stays: Iterable[Stay],
    rule: ContactRule,
    stays_at_many: StaysLookup,
    found: dict[UUID, set[Exposure]],
    excluded: Callable[[UUID], bool],
) -> None:
    indexes = list(index_stays)
    if not indexes:
        return
    # [start - before, end + after] is exactly the index window: a stay overlaps the window
    # (even by 0 s) iff it intersects it, so asking for these bounds misses nobody. Every
    # window of the level goes in one lookup.
    windows = [(i.venue_id, i.start - rule.before, i.end + rule.after) for i in indexes]
    for index, others in zip(indexes, stays_at_many(windows), strict=True):
        for other in others:
            if excluded(other.visitor_id):
                continue
            exposure = exposure_of(index, other, rule)
            if exposure is not None:
                found.setdefault(other.visitor_id, set()).add(exposure)


def _after_exposure(
    stays: Iterable[Stay], visitor_id: UUID, since: datetime, until: datetime
) -> list[Stay]:
    kept: dict[UUID, Stay] = {}
    for stay in stays:
        if stay.visitor_id != visitor_id or stay.end <= since or stay.start > until:
            continue
        kept[stay.visit_id] = Stay(
            stay.visit_id, stay.visitor_id, stay.venue_id, max(stay.start, since), stay.end
        )
    return sorted(kept.values(), key=lambda stay: (stay.start, stay.visit_id))


def close_contacts(
    index_stays: Iterable[Stay],
    index_visitor_ids: frozenset[UUID],
    rule: ContactRule,
    depth: int,
    *,
    stays_at_many: StaysLookup,
    stays_of_many: StaysLookup,
    until: datetime | None = None,
) -> list[Contact]:
    """The close contacts of the index stays, to depth 1 or 2, sorted by (depth, visitor_id).

    `stays_at_many` answers, for each (venue, t0, t1) window, at least every stay at the
    venue that intersects [t0, t1]; `stays_of_many`, for each (visitor, t0, t1), at least
    every stay of the visitor that does; extra stays are filtered out. Each level asks one
    batch: depth 1 the index stays' windows; depth 2 the contacts' stays, then their windows.
    Depth 2 takes each depth-1 contact's stays that end strictly after their earliest
    exposure start t_e (and start no later than `until`, when given), clips them to start at
    t_e, and applies the same rule to them. A person is listed once, at the lowest depth;
    index persons are never listed.
    """
    if depth not in (1, 2):
        raise ValueError("depth must be 1 or 2")
    first: dict[UUID, set[Exposure]] = {}
    _expose(index_stays, rule, stays_at_many, first, index_visitor_ids.__contains__)
    contacts = [
        Contact(visitor, 1, tuple(sorted(found, key=_exposure_order)))
        for visitor, found in first.items()
    ]
    if depth == 2 and contacts:
        horizon = END_OF_TIME if until is None else until
        second: dict[UUID, set[Exposure]] = {}

        def excluded(visitor: UUID) -> bool:
            return visitor in index_visitor_ids or visitor in first

        # A stay that starts by the horizon and ends after t_e intersects [t_e, t_e] even
        # when the horizon comes first, so a window never runs backwards.
        asked = [
            (c.visitor_id, c.exposures[0].start, max(c.exposures[0].start, horizon))
            for c in contacts
        ]
        stays = [
            stay
            for (visitor, exposed_at, _), found in zip(asked, stays_of_many(asked), strict=True)
            for stay in _after_exposure(found, visitor, exposed_at, horizon)
        ]
        _expose(stays, rule, stays_at_many, second, excluded)
        contacts.extend(
            Contact(visitor, 2, tuple(sorted(found, key=_exposure_order)))
            for visitor, found in second.items()
        )
    contacts.sort(key=lambda contact: (contact.depth, contact.visitor_id))
    return contacts
