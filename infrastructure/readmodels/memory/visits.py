"""The visit log in memory (the embedded deployment), rebuilt from the log at every start."""

from __future__ import annotations

import bisect
import heapq
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from domain.ports import (
    Seen,
    VisitView,
)
from infrastructure.readmodels.views import closed_view


class MemoryVisitLog:
    """Visits by id, by guardian, by venue (sorted by check-in), open ones and their deadlines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._visits: dict[UUID, VisitView] = {}
        # Entries are (time, visit id as an int): tuples of untracked values, which the garbage
        # collector stops tracking, so its pauses do not grow with the number of visits.
        self._by_guardian: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        self._by_venue: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        self._open_of: dict[UUID, set[UUID]] = defaultdict(set)
        self._open_at: dict[UUID, int] = defaultdict(int)
        self._deadlines: list[tuple[datetime, int]] = []

    def get(self, visit_id: UUID) -> VisitView | None:
        """One visit."""
        return self._visits.get(visit_id)

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and dependents that began in [start, end)."""
        with self._lock:
            return self._range(self._by_guardian.get(guardian_id, []), start, end)

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person."""
        with self._lock:
            return [self._visits[v] for v in self._open_of.get(visitor_id, ())]

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people and one visit (memory: nothing to await)."""
        return Seen(
            open_visits={person: self.open_of(person) for person in people},
            visit=None if visit_id is None else self.get(visit_id),
        )

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end)."""
        with self._lock:
            return self._range(self._by_venue.get(venue_id, []), start, end)

    def _range(
        self, index: list[tuple[datetime, int]], start: datetime, end: datetime
    ) -> list[VisitView]:
        low = bisect.bisect_left(index, (start, 0))
        high = bisect.bisect_left(index, (end, 0))
        found = (self._visits.get(UUID(int=v)) for _, v in index[low:high])
        return [visit for visit in found if visit is not None]

    def occupancy(self, venue_id: UUID) -> int:
        """Open visits at a venue."""
        return self._open_at.get(venue_id, 0)

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits past their deadline, earliest first."""
        found: list[VisitView] = []
        with self._lock:
            for deadline, visit_id in heapq.nsmallest(limit * 2 + 16, self._deadlines):
                if deadline > now or len(found) >= limit:
                    break
                visit = self._visits.get(UUID(int=visit_id))
                if visit is not None and visit.checked_out_at is None:
                    found.append(visit)
            # Entries of visits closed meanwhile are dropped lazily.
            while self._deadlines and self._is_stale(self._deadlines[0][1]):
                heapq.heappop(self._deadlines)
        return found

    def _is_stale(self, visit_id: int) -> bool:
        visit = self._visits.get(UUID(int=visit_id))
        return visit is None or visit.checked_out_at is not None

    def checked_in(self, visit: VisitView, deadline: datetime) -> None:
        """Add an open visit."""
        with self._lock:
            if visit.visit_id in self._visits:
                return
            self._visits[visit.visit_id] = visit
            entry = (visit.checked_in_at, visit.visit_id.int)
            _insort(self._by_guardian[visit.guardian_id], entry)
            _insort(self._by_venue[visit.venue_id], entry)
            if visit.checked_out_at is None:
                self._open_of[visit.visitor_id].add(visit.visit_id)
                self._open_at[visit.venue_id] += 1
                heapq.heappush(self._deadlines, (deadline, visit.visit_id.int))

    def checked_out(self, visit_id: UUID, at: datetime, reason: str) -> None:
        """Close a visit."""
        with self._lock:
            visit = self._visits.get(visit_id)
            if visit is None or visit.checked_out_at is not None:
                return
            self._visits[visit_id] = closed_view(visit, at, reason)
            self._open_of[visit.visitor_id].discard(visit_id)
            self._open_at[visit.venue_id] -= 1

    def forget_guardian(self, guardian_id: UUID) -> None:
        """Drop every visit of a visitor and their dependents."""
        with self._lock:
            for _, visit_id in self._by_guardian.pop(guardian_id, []):
                self._remove(UUID(int=visit_id))

    def drop_before(self, cutoff: datetime) -> int:
        """Drop visits that began before the cutoff."""
        with self._lock:
            old = [v for v in self._visits.values() if v.checked_in_at < cutoff]
            for visit in old:
                self._remove(visit.visit_id)
            for index in (*self._by_guardian.values(), *self._by_venue.values()):
                del index[: bisect.bisect_left(index, (cutoff, 0))]
            return len(old)

    def _remove(self, visit_id: UUID) -> None:
        visit = self._visits.pop(visit_id, None)
        if visit is not None and visit.checked_out_at is None:
            self._open_of[visit.visitor_id].discard(visit_id)
            self._open_at[visit.venue_id] -= 1


def _insort(entries: list[tuple[datetime, int]], entry: tuple[datetime, int]) -> None:
    """Insert in order. Visits mostly arrive in time order (live, and replayed from the log),
    so the common case is one comparison with the last entry, not a binary search."""
    if not entries or entries[-1] <= entry:
        entries.append(entry)
    else:
        bisect.insort(entries, entry)
