"""Reading the log for the history: the notifications after a position, decoded into rows."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from infrastructure.history.rows import Operation, Rows

BATCH = 2000


class Batch:
    """The operations of the notifications after a position, and the last one's id."""

    def __init__(self, operations: list[Operation], count: int, last: int) -> None:
        self.operations = operations
        self.count = count
        self.last = last


def read_batch(
    recorder: ApplicationRecorder,
    mapper: Mapper[UUID],
    rows: Rows,
    position: int,
    limit: int = BATCH,
) -> Batch:
    """Up to `limit` notifications after `position`, as operations in log order.

    The log's ids follow commit order (each insert takes the events table's EXCLUSIVE lock,
    ADR 0008), so nothing committed later can appear below `position`.
    """
    notifications = recorder.select_notifications(
        start=position, limit=limit, inclusive_of_start=False
    )
    operations: list[Operation] = []
    for notification in notifications:
        event = mapper.to_domain_event(notification)
        operations.extend(rows.of(event, notification.state))
    last = notifications[-1].id if notifications else position
    return Batch(operations, len(notifications), last)


def head(recorder: ApplicationRecorder) -> int:
    """The log's last notification id (0 when empty)."""
    return recorder.max_notification_id() or 0
