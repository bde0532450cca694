"""The domain's visit log over a hot part and the history.

What is hot (open visits, occupancy, deadlines: what a check-in and the duties read, many
times a second) comes from a small, fast store: process memory (embedded) or Redis
(production). Everything closed or old (a visitor's visits, a venue's visits for statistics,
stays for tracing, exposures: `history_reads.py`) comes from the `History`, whose reads first
catch up with the log, so a client reads its own writes there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.ports import Seen, VisitView
from infrastructure.history.port import History
from infrastructure.readmodels.history_reads import drop_history


class HotVisits(Protocol):
    """The open visits, kept hot: by id and person, occupancy by venue, deadlines."""

    def get(self, visit_id: UUID) -> VisitView | None:
        """One open visit (None once it is closed)."""
        ...

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person."""
        ...

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people, and the visit if it is open."""
        ...

    def occupancy(self, venue_id: UUID) -> int:
        """How many visits are open at a venue."""
        ...

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits whose venue's maximum dwell has passed."""
        ...

    def drop_before(self, cutoff: datetime) -> int:
        """Drop open visits that began before `cutoff`; returns how many."""
        ...


class HistoryVisitLog:
    """`VisitLog`: open visits from the hot part, the rest from the history."""

    def __init__(self, hot: HotVisits, history: History) -> None:
        self.hot = hot
        self.history = history

    def get(self, visit_id: UUID) -> VisitView | None:
        """One visit: open ones are hot, closed ones are read from the history."""
        return self.hot.get(visit_id) or self.history.visit(visit_id)

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and their dependents that began in [start, end), oldest first."""
        return self.history.of_guardian(guardian_id, start, end)

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person."""
        return self.hot.open_of(visitor_id)

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """What a check-in needs, hot only: a visit of its key that is closed already is not
        seen, so its commit conflicts and the check-in looks again in the log itself."""
        return await self.hot.look(people, visit_id)

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        return self.history.at_venue(venue_id, start, end)

    def occupancy(self, venue_id: UUID) -> int:
        """How many visits are open at a venue."""
        return self.hot.occupancy(venue_id)

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits whose venue's maximum dwell has passed."""
        return self.hot.due(now, limit)

    def drop_before(self, cutoff: datetime) -> int:
        """Retention: the hot part drops its open visits that began before the cutoff, the
        history the days before the cutoff's, whole; returns how many days the history dropped."""
        self.hot.drop_before(cutoff)
        return drop_history(self.history, cutoff)
