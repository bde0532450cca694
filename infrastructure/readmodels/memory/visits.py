"""The visit log in memory (the embedded deployment), rebuilt from the log at every start."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from domain.ports import (
    Seen,
    VisitView,
)
from infrastructure.readmodels.memory.open_visits import MemoryOpenVisits
from infrastructure.readmodels.views import closed_view


class MemoryVisitLog:
    """Visits by id, by guardian, by venue (sorted by check-in); the open ones, their occupancy
    and deadlines are a `MemoryOpenVisits` of its own (the hot part the embedded deployment
    keeps alone)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._visits: dict[UUID, VisitView] = {}
        # Entries are (time, visit id as an int): tuples of untracked values, which the garbage
        # collector stops tracking, so its pauses do not grow with the number of visits.
        self._by_guardian: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        self._by_venue: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        self._open = MemoryOpenVisits()

    def get(self, visit_id: UUID) -> VisitView | None:
        """One visit."""
        return self._visits.get(visit_id)

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and dependents that began in [start, end)."""
        with self._lock:
            return self._range(self._by_guardian.get(guardian_id, []), start, end)

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person."""
        return self._open.open_of(visitor_id)

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people and one visit, open or closed (memory: nothing to
        await)."""
        return Seen(
            open_visits={person: self._open.open_of(person) for person in people},
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
        return self._open.occupancy(venue_id)

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits past their deadline, earliest first."""
        return self._open.due(now, limit)

    def checked_in(self, visit: VisitView, deadline: datetime) -> None:
        """Add a visit (open unless it says it is closed)."""
        with self._lock:
            if visit.visit_id in self._visits:
                return
            self._visits[visit.visit_id] = visit
            entry = (visit.checked_in_at, visit.visit_id.int)
            _insort(self._by_guardian[visit.guardian_id], entry)
            _insort(self._by_venue[visit.venue_id], entry)
        self._open.checked_in(visit, deadline)

    def checked_out(self, visit_id: UUID, at: datetime, reason: str) -> None:
        """Close a visit."""
        with self._lock:
            visit = self._visits.get(visit_id)
            if visit is None or visit.checked_out_at is not None:
                return
            self._visits[visit_id] = closed_view(visit, at, reason)
        self._open.checked_out(visit_id, at, reason)

    def forget_guardian(self, guardian_id: UUID) -> None:
        """Drop every visit of a visitor and their dependents."""
        with self._lock:
            for _, visit_id in self._by_guardian.pop(guardian_id, []):
                self._visits.pop(UUID(int=visit_id), None)
        self._open.forget_guardian(guardian_id)

    def drop_before(self, cutoff: datetime) -> int:
        """Drop visits that began before the cutoff."""
        with self._lock:
            old = [v.visit_id for v in self._visits.values() if v.checked_in_at < cutoff]
            for visit_id in old:
                del self._visits[visit_id]
            for index in (*self._by_guardian.values(), *self._by_venue.values()):
                del index[: bisect.bisect_left(index, (cutoff, 0))]
        self._open.drop_before(cutoff)
        return len(old)


def _insort(entries: list[tuple[datetime, int]], entry: tuple[datetime, int]) -> None:
    """Insert in order. Visits mostly arrive in time order (live, and replayed from the log),
    so the common case is one comparison with the last entry, not a binary search."""
    if not entries or entries[-1] <= entry:
        entries.append(entry)
    else:
        bisect.insort(entries, entry)
