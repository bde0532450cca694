"""What the read side asks of the history (`History`), whatever stores it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol
from uuid import UUID

from domain.ports import ExposureView, VisitView
from domain.tracing import Stay, Window


class History(Protocol):
    """Visits, stays and exposures of the retention period, written by one projection.

    Every read first brings the history up to the log's head as it stood when the read began
    (`catch_up`), so a client reads its own writes. Rows hold pseudonymous ids and times only.
    """

    def catch_up(self) -> int:
        """Apply every event the log holds beyond the tracking position, each exactly once
        (rows and position in one transaction per batch); returns how many were applied."""
        ...

    def position(self) -> int:
        """The last notification id applied."""
        ...

    def visit(self, visit_id: UUID) -> VisitView | None:
        """One visit (open or closed)."""
        ...

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and their dependents that began in [start, end), oldest first."""
        ...

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        ...

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays at a venue intersecting [t0, t1] (open ones end at in + max dwell, or now)."""
        ...

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1]."""
        ...

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_at` of each (venue, t0, t1) window, in their order: one read of the store."""
        ...

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_of` of each (visitor, t0, t1) window, in their order: one read of the store."""
        ...

    def exposures_at(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures declared at a venue overlapping [start, end]."""
        ...

    def drop_days_before(self, day: date) -> int:
        """Retention: drop every day before `day` (UTC) whole, its rows and the log's rows of
        its visits; returns how many days went."""
        ...
