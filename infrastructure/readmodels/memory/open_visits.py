"""The open visits in memory: what the embedded deployment keeps hot of visits.

A visit is here from its check-in until its check-out; closed visits live in the history
(`infrastructure/history`). At start the open ones are loaded from the history, not replayed.
"""

from __future__ import annotations

import heapq
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from domain.ports import Seen, VisitView


class MemoryOpenVisits:
    """Open visits by id and by person, occupancy by venue, and their deadlines; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._visits: dict[UUID, VisitView] = {}
        self._open_of: dict[UUID, set[UUID]] = defaultdict(set)
        self._open_at: dict[UUID, int] = defaultdict(int)
        # (deadline, visit id as an int); entries of visits closed meanwhile go lazily.
        self._deadlines: list[tuple[datetime, int]] = []

    def __len__(self) -> int:
        """How many visits are open."""
        return len(self._visits)

    def get(self, visit_id: UUID) -> VisitView | None:
        """One open visit (None once it is closed)."""
        return self._visits.get(visit_id)

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person."""
        with self._lock:
            return [self._visits[v] for v in self._open_of.get(visitor_id, ())]

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people, and the visit if it is open (memory: nothing to await)."""
        return Seen(
            open_visits={person: self.open_of(person) for person in people},
            visit=None if visit_id is None else self.get(visit_id),
        )

    def occupancy(self, venue_id: UUID) -> int:
        """Open visits at a venue."""
        return self._open_at.get(venue_id, 0)

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits past their deadline, earliest first."""
        found: list[VisitView] = []
        with self._lock:
            while self._deadlines and UUID(int=self._deadlines[0][1]) not in self._visits:
                heapq.heappop(self._deadlines)
            for deadline, visit_id in heapq.nsmallest(limit * 2 + 16, self._deadlines):
                if deadline > now or len(found) >= limit:
                    break
                visit = self._visits.get(UUID(int=visit_id))
                if visit is not None:
                    found.append(visit)
        return found

    def checked_in(self, visit: VisitView, deadline: datetime) -> None:
        """Add an open visit (a known one is left as it is)."""
        with self._lock:
            self._add(visit, deadline)

    def load(self, visits: Iterable[tuple[VisitView, datetime]]) -> int:
        """Add open visits with their deadlines (a start); returns how many."""
        count = 0
        with self._lock:
            for visit, deadline in visits:
                self._add(visit, deadline)
                count += 1
        return count

    def _add(self, visit: VisitView, deadline: datetime) -> None:
        if visit.visit_id in self._visits or visit.checked_out_at is not None:
            return
        self._visits[visit.visit_id] = visit
        self._open_of[visit.visitor_id].add(visit.visit_id)
        self._open_at[visit.venue_id] += 1
        heapq.heappush(self._deadlines, (deadline, visit.visit_id.int))

    def checked_out(self, visit_id: UUID, at: datetime, reason: str) -> None:
        """A visit closed: it leaves the hot state (the history keeps it)."""
        with self._lock:
            self._remove(visit_id)

    def forget_guardian(self, guardian_id: UUID) -> None:
        """Drop the open visits of a visitor and their dependents (erasure)."""
        with self._lock:
            for visit in [v for v in self._visits.values() if v.guardian_id == guardian_id]:
                self._remove(visit.visit_id)

    def drop_before(self, cutoff: datetime) -> int:
        """Drop open visits that began before the cutoff (retention); returns how many."""
        with self._lock:
            old = [v.visit_id for v in self._visits.values() if v.checked_in_at < cutoff]
            for visit_id in old:
                self._remove(visit_id)
            return len(old)

    def _remove(self, visit_id: UUID) -> None:
        visit = self._visits.pop(visit_id, None)
        if visit is None:
            return
        of_person = self._open_of[visit.visitor_id]
        of_person.discard(visit_id)
        if not of_person:
            del self._open_of[visit.visitor_id]
        self._open_at[visit.venue_id] -= 1
        if not self._open_at[visit.venue_id]:
            del self._open_at[visit.venue_id]
