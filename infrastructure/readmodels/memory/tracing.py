"""In-memory read model that answers the stay lookups of contact tracing."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from domain.ports import ExposureView
from domain.tracing import Stay, Window, effective_end

_DAY_SECONDS = 86_400


def _day(at: datetime) -> int:
    """The UTC day number of an aware datetime (days since the epoch)."""
    if at.tzinfo is None:
        raise ValueError("contact index times must be timezone-aware")
    return int(at.timestamp() // _DAY_SECONDS)


class _Visit(msgspec.Struct, gc=False):
    """A visit as indexed; once closed, its stay is made once and shared by every lookup.

    Not tracked by the garbage collector (it refers only to ids, times and its stay, so it can
    be in no reference cycle): the index keeps one per visit, and the collector's pauses would
    otherwise grow with their number.
    """

    visit_id: UUID
    visitor_id: UUID
    venue_id: UUID
    start: datetime
    max_dwell: timedelta
    closed: Stay | None = None
    days: range = range(0)

    def close(self, at: datetime) -> None:
        """End the visit at `at`, or at its start if `at` comes earlier."""
        end = effective_end(self.start, at, self.max_dwell, at)
        self.closed = Stay(self.visit_id, self.visitor_id, self.venue_id, self.start, end)

    def latest_end(self) -> datetime:
        """The latest the visit can end, whatever `now` a lookup passes."""
        return self.start + self.max_dwell if self.closed is None else self.closed.end

    def stay(self, now: datetime) -> Stay:
        """The visit as a stay, an open one ending at min(in + max_dwell, now)."""
        if self.closed is not None:
            return self.closed
        end = effective_end(self.start, None, self.max_dwell, now)
        return Stay(self.visit_id, self.visitor_id, self.venue_id, self.start, end)


class _Bucket:
    """The visits at one venue that touch one UTC day, sorted by start."""

    __slots__ = ("latest_ends", "longest", "starts", "visits")

    def __init__(self) -> None:
        self.starts: list[datetime] = []
        self.latest_ends: list[datetime] = []
        self.visits: list[_Visit] = []
        # An upper bound on the length of any visit here (it never shrinks), so a lookup can
        # skip the visits that started too early to reach its window.
        self.longest = timedelta(0)

    def add(self, visit: _Visit) -> None:
        """File the visit in start order."""
        position = bisect_right(self.starts, visit.start)
        latest_end = visit.latest_end()
        self.starts.insert(position, visit.start)
        self.latest_ends.insert(position, latest_end)
        self.visits.insert(position, visit)
        self.longest = max(self.longest, latest_end - visit.start)

    def remove(self, visit: _Visit) -> None:
        """Take the visit out (it must be here)."""
        position = bisect_left(self.starts, visit.start)
        while self.visits[position] is not visit:
            position += 1
        del self.starts[position]
        del self.latest_ends[position]
        del self.visits[position]


class MemoryContactIndex:
    """Stays by (venue, UTC day) and by visitor, for `close_contacts`; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._visits: dict[UUID, _Visit] = {}
        self._buckets: dict[tuple[UUID, int], _Bucket] = {}
        self._of_visitor: dict[UUID, dict[UUID, _Visit]] = {}
        # Visits by the UTC day they started on, so retention drops a day without a full scan.
        self._started_on: dict[int, dict[UUID, _Visit]] = {}

    def __len__(self) -> int:
        """The number of visits indexed."""
        with self._lock:
            return len(self._visits)

    def check_in(
        self,
        visit_id: UUID,
        visitor_id: UUID,
        venue_id: UUID,
        at: datetime,
        max_dwell: timedelta,
    ) -> None:
        """Index an open visit; checking in a known visit id again replaces it."""
        if max_dwell < timedelta(0):
            raise ValueError("max_dwell cannot be negative")
        start_day = _day(at)
        with self._lock:
            if visit_id in self._visits:
                self._drop(self._visits[visit_id])
            visit = _Visit(visit_id, visitor_id, venue_id, at, max_dwell)
            self._visits[visit_id] = visit
            self._of_visitor.setdefault(visitor_id, {})[visit_id] = visit
            self._started_on.setdefault(start_day, {})[visit_id] = visit
            self._file(visit)

    def check_out(self, visit_id: UUID, at: datetime) -> None:
        """Close a visit at `at` (never before its start); an unknown visit is ignored."""
        _day(at)
        with self._lock:
            visit = self._visits.get(visit_id)
            if visit is None:
                return
            self._unfile(visit)
            visit.close(at)
            self._file(visit)

    def forget_visit(self, visit_id: UUID) -> None:
        """Drop one visit, if indexed."""
        with self._lock:
            visit = self._visits.get(visit_id)
            if visit is not None:
                self._drop(visit)

    def forget_visitor(self, visitor_id: UUID) -> None:
        """Drop every visit of a visitor (erasure)."""
        with self._lock:
            for visit in list(self._of_visitor.get(visitor_id, {}).values()):
                self._drop(visit)

    def drop_before(self, cutoff: datetime) -> int:
        """Drop the visits that started before `cutoff` (retention); return how many."""
        cutoff_day = _day(cutoff)
        dropped = 0
        with self._lock:
            for day in sorted(day for day in self._started_on if day <= cutoff_day):
                for visit in list(self._started_on[day].values()):
                    if visit.start < cutoff:
                        self._drop(visit)
                        dropped += 1
        return dropped

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """The stays at a venue that intersect [t0, t1], open ones resolved at `now`."""
        first_day, last_day = _day(t0), _day(t1)
        found: list[Stay] = []
        with self._lock:
            for day in range(first_day, last_day + 1):
                bucket = self._buckets.get((venue_id, day))
                if bucket is None:
                    continue
                starts, latest_ends, visits = bucket.starts, bucket.latest_ends, bucket.visits
                stop = bisect_right(starts, t1)
                for position in range(bisect_left(starts, t0 - bucket.longest, 0, stop), stop):
                    if latest_ends[position] < t0:
                        continue
                    visit = visits[position]
                    # A visit spanning several days of the window is reported from the first
                    # of them only.
                    if day not in (first_day, visit.days.start):
                        continue
                    stay = visit.stay(now)
                    if stay.end >= t0:
                        found.append(stay)
        return found

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """The stays of a visitor that intersect [t0, t1], sorted by start."""
        found: list[Stay] = []
        with self._lock:
            for visit in self._of_visitor.get(visitor_id, {}).values():
                if visit.start > t1:
                    continue
                stay = visit.stay(now)
                if stay.end >= t0:
                    found.append(stay)
        found.sort(key=lambda stay: (stay.start, stay.visit_id))
        return found

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_at` of each (venue, t0, t1) window, in their order (no trip to save)."""
        return [self.stays_at(venue_id, t0, t1, now) for venue_id, t0, t1 in windows]

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_of` of each (visitor, t0, t1) window, in their order (no trip to save)."""
        return [self.stays_of(visitor_id, t0, t1, now) for visitor_id, t0, t1 in windows]

    def _file(self, visit: _Visit) -> None:
        visit.days = range(_day(visit.start), _day(visit.latest_end()) + 1)
        for day in visit.days:
            key = (visit.venue_id, day)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket()
            bucket.add(visit)

    def _unfile(self, visit: _Visit) -> None:
        for day in visit.days:
            key = (visit.venue_id, day)
            bucket = self._buckets[key]
            bucket.remove(visit)
            if not bucket.visits:
                del self._buckets[key]
        visit.days = range(0)

    def _drop(self, visit: _Visit) -> None:
        self._unfile(visit)
        del self._visits[visit.visit_id]
        of_visitor = self._of_visitor[visit.visitor_id]
        del of_visitor[visit.visit_id]
        if not of_visitor:
            del self._of_visitor[visit.visitor_id]
        start_day = _day(visit.start)
        started = self._started_on[start_day]
        del started[visit.visit_id]
        if not started:
            del self._started_on[start_day]


class MemoryExposureLog:
    """Declared exposures by venue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_venue: dict[UUID, list[ExposureView]] = defaultdict(list)

    def add(self, exposure: ExposureView) -> None:
        """Remember an exposure."""
        with self._lock:
            known = self._by_venue[exposure.venue_id]
            if all(e.exposure_id != exposure.exposure_id for e in known):
                known.append(exposure)

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures at a venue overlapping [start, end]."""
        with self._lock:
            return [
                e for e in self._by_venue.get(venue_id, []) if e.start <= end and start <= e.end
            ]
