"""The history in process memory: the memory read models behind the `History` port.

For tests and small embedded deployments: nothing is on disk, so every start replays the log
from position 0. Retention drops the days from memory only; this store never deletes the
log's rows (the on-disk stores do, `drop_days_before`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from domain.ports import ExposureView, VisitView
from domain.tracing import Stay, Window
from infrastructure.history.log import BATCH, head, read_batch
from infrastructure.history.rows import (
    AddExposure,
    AddVisit,
    CloseVisit,
    EraseVisitor,
    Operation,
    Rows,
    day_start,
)
from infrastructure.readmodels.memory.tracing import MemoryContactIndex, MemoryExposureLog
from infrastructure.readmodels.memory.visits import MemoryVisitLog

# Earliest and latest times a visit can begin at, for erasure.
_ALL_TIME = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


class MemoryHistory:
    """Visits, stays and exposures in memory, applied from the log from its own position."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        default_max_dwell_minutes: int = 180,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._rows = Rows(default_max_dwell_minutes)
        self._lock = threading.RLock()
        self._position = 0
        self._visits = MemoryVisitLog()
        self._contacts = MemoryContactIndex()
        self._exposures = MemoryExposureLog()
        self._days: set[date] = set()

    def catch_up(self) -> int:
        """Apply what the log holds beyond the position; returns how many events."""
        applied = 0
        with self._lock:
            while True:
                batch = read_batch(self._recorder, self._mapper, self._rows, self._position)
                for operation in batch.operations:
                    self._apply(operation)
                self._position = batch.last
                applied += batch.count
                if batch.count < BATCH:
                    return applied

    def position(self) -> int:
        """The last notification id applied."""
        return self._position

    def _fresh(self) -> None:
        if head(self._recorder) > self._position:
            self.catch_up()

    def _apply(self, operation: Operation) -> None:
        if isinstance(operation, AddVisit):
            visit, dwell = operation.visit, timedelta(minutes=operation.max_dwell_minutes)
            self._contacts.check_in(
                visit.visit_id, visit.visitor_id, visit.venue_id, visit.checked_in_at, dwell
            )
            self._visits.checked_in(visit, deadline=visit.checked_in_at + dwell)
            self._days.add(operation.day)
        elif isinstance(operation, CloseVisit):
            self._visits.checked_out(operation.visit_id, operation.at, operation.reason)
            self._contacts.check_out(operation.visit_id, operation.at)
        elif isinstance(operation, EraseVisitor):
            self._erase(operation.visitor_id)
        elif isinstance(operation, AddExposure):
            self._exposures.add(operation.exposure)

    def _erase(self, visitor_id: UUID) -> None:
        """The visits the visitor is guardian of (theirs and their dependents'), and any stay
        of theirs as a person."""
        for visit in self._visits.of_guardian(visitor_id, *_ALL_TIME):
            self._contacts.forget_visit(visit.visit_id)
        self._contacts.forget_visitor(visitor_id)
        self._visits.forget_guardian(visitor_id)

    def visit(self, visit_id: UUID) -> VisitView | None:
        """One visit (open or closed)."""
        self._fresh()
        return self._visits.get(visit_id)

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and their dependents that began in [start, end), oldest first."""
        self._fresh()
        return self._visits.of_guardian(guardian_id, start, end)

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        self._fresh()
        return self._visits.at_venue(venue_id, start, end)

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays at a venue intersecting [t0, t1]."""
        self._fresh()
        return self._contacts.stays_at(venue_id, t0, t1, now)

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1], sorted by start."""
        self._fresh()
        return self._contacts.stays_of(visitor_id, t0, t1, now)

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_at` of each (venue, t0, t1) window, in their order."""
        self._fresh()
        return self._contacts.stays_at_many(windows, now)

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_of` of each (visitor, t0, t1) window, in their order."""
        self._fresh()
        return self._contacts.stays_of_many(windows, now)

    def exposures_at(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures declared at a venue overlapping [start, end]."""
        self._fresh()
        return self._exposures.at_venue(venue_id, start, end)

    def drop_days_before(self, day: date) -> int:
        """Drop the visits of every day before `day` from memory; returns how many days."""
        with self._lock:
            cutoff = day_start(day)
            self._visits.drop_before(cutoff)
            self._contacts.drop_before(cutoff)
            gone = {d for d in self._days if d < day}
            self._days -= gone
            return len(gone)
