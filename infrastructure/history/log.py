"""Reading the log for the history: the notifications after a position, decoded into rows."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import cast
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from infrastructure.history.rows import Operation, Rows
from infrastructure.projections.read_ahead import read_ahead

BATCH = 2000


class Batch:
    """The operations of the notifications after `start`, and the last one's id."""

    def __init__(self, start: int, operations: list[Operation], count: int, last: int) -> None:
        self.start = start
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
    return Batch(position, operations, len(notifications), last)


def head(recorder: ApplicationRecorder) -> int:
    """The log's last notification id (0 when empty)."""
    return recorder.max_notification_id() or 0


def batches(
    recorder: ApplicationRecorder, mapper: Mapper[UUID], rows: Rows, position: int, limit: int
) -> Iterator[Batch]:
    """Consecutive batches from `position` until one comes short."""
    while True:
        batch = read_batch(recorder, mapper, rows, position, limit)
        yield batch
        if batch.count < limit:
            return
        position = batch.last


class Follower:
    """Applies the log's batches one after the other, the next one read and decoded in a
    thread while the store writes the current one (decoding is most of a rebuild's work).

    `apply(batch)` writes a batch if the store's position is still `batch.start`, in one
    transaction, and answers whether it did; when another writer moved the position, or
    anything fails, what was decoded ahead is thrown away with the `Rows` it used (a venue's
    dwell it learnt may not be committed), and `fresh_rows` makes new ones.
    """

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        fresh_rows: Callable[[], Rows],
        limit: int,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._fresh_rows = fresh_rows
        self.rows = fresh_rows()
        self.limit = limit

    def catch_up(self, position: Callable[[], int], apply: Callable[[Batch], bool]) -> int:
        """Apply every batch beyond the position; how many events."""
        applied = 0
        while True:
            rows = self.rows
            stream = cast(
                Generator[Batch, None, None],
                read_ahead(
                    batches(self._recorder, self._mapper, rows, position(), self.limit), depth=1
                ),
            )
            try:
                for batch in stream:
                    if not apply(batch):
                        break
                    applied += batch.count
                else:
                    return applied
            except BaseException:
                self.rows = self._fresh_rows()
                raise
            finally:
                stream.close()  # the thread stops after the batch it is decoding
            self.rows = self._fresh_rows()
