"""A batch's operations grouped for set-wise statements, without changing what they mean.

A store writes each group as a few statements (all check-ins, the check-outs by day, the
erasures, ...) instead of one per event. A check-out always follows its check-in in the log,
so inserting a group's visits before closing any keeps their meaning; an erasure deletes what
came before it, so a visit that follows an erasure starts a new group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from uuid import UUID

from infrastructure.history.rows import (
    AddExposure,
    AddVisit,
    CloseVisit,
    EraseVisitor,
    LogRow,
    Operation,
    VenueDwell,
)


class Changes:
    """Operations of one group, by kind; applied in the order of the fields."""

    def __init__(self) -> None:
        self.venues: dict[UUID, int] = {}
        self.visits: list[AddVisit] = []
        self.closes: dict[date, list[CloseVisit]] = defaultdict(list)
        self.erased: list[UUID] = []
        self.exposures: list[AddExposure] = []
        self.log_rows: dict[date, list[UUID]] = defaultdict(list)

    def days(self) -> set[date]:
        """The days this group writes rows of (each needs its partitions)."""
        return {visit.day for visit in self.visits} | set(self.log_rows)


def grouped(operations: Iterable[Operation], dropped_before: date | None) -> list[Changes]:
    """The operations in groups; rows of days already dropped by retention are left out (a
    forgotten event of such a day can still be read back while its log rows are deleted)."""
    groups = [Changes()]
    for operation in operations:
        current = groups[-1]
        if isinstance(operation, AddVisit | CloseVisit) and current.erased:
            current = Changes()
            groups.append(current)
        if isinstance(operation, AddVisit | CloseVisit | LogRow) and (
            dropped_before is not None and operation.day < dropped_before
        ):
            continue
        if isinstance(operation, AddVisit):
            current.visits.append(operation)
        elif isinstance(operation, CloseVisit):
            current.closes[operation.day].append(operation)
        elif isinstance(operation, EraseVisitor):
            current.erased.append(operation.visitor_id)
        elif isinstance(operation, AddExposure):
            current.exposures.append(operation)
        elif isinstance(operation, VenueDwell):
            current.venues[operation.venue_id] = operation.minutes
        elif isinstance(operation, LogRow):
            current.log_rows[operation.day].append(operation.originator_id)
    return groups
