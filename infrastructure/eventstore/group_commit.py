"""Group commit: concurrent writes share one transaction of the event store.

Each writer hands over the events of its aggregates and waits: a thread on `save`, a coroutine
on `save_async` (which holds no thread; its event loop is woken once per batch). One flusher
thread gathers what arrives within a short wait (or until the batch is full), saves it all
with one call (one transaction, one fsync), and passes the batch to a second thread that
projects it into the read models, so the next batch commits while this one is projected.
Where projecting only starts there (`on_saved` sends the batch to a shared store, which
applies it once other processes' earlier batches are in), a third thread waits for each
batch not applied at once to be applied (`settle`), so the second one sends the next batch
meanwhile.
Writers are answered once their batch is durable and projected. Where the store can (the
PostgreSQL one), it refuses a writer whose events conflict (a version taken already) and saves
the rest of the batch in the same transaction; that writer alone hears the conflict. If the
combined save fails for anything but the store being unreachable (a conflict it cannot refuse
alone, such as two writers of the batch at one version; an item whose key was erased
meanwhile), one bad item never fails the rest of its batch: when the store names the
conflicting event (`blame`), the items holding it are saved again alone and the rest together;
otherwise every item is saved again on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, Recording

log = logging.getLogger("fangxin.group_commit")

# Saves events in one transaction: `save(*events, writers=[...])`, where `writers[i]` names the
# writer of the i-th event. Returns one recording per event, or None for each event of a writer
# the store refused whole for a conflict (a store that cannot refuse one writer raises instead).
Save = Callable[..., list[Recording[Any] | None]]
# Projects a saved batch; True when it is applied already, so nobody needs to wait for it.
OnSaved = Callable[[list[Recording[Any]]], bool | None]
# Given a failed save's error, which events it was about (None when the error does not say).
Blame = Callable[[Exception], Callable[[Any], bool] | None]
# Failures of the store itself, not of any one item: retrying the batch item by item would
# only wait for the same failure once per writer.
STORE_DOWN = (OperationalError, InterfaceError)


@dataclass
class _Item:
    events: list[Any]
    # When the writer handed it over (the group commit's clock): its wait counts from here.
    since: float = 0.0
    # A writer in a thread waits on `done`; one on an event loop awaits `future`.
    done: threading.Event | None = None
    future: asyncio.Future[list[Recording[Any]]] | None = None
    recordings: list[Recording[Any]] = field(default_factory=list)
    error: BaseException | None = None


@dataclass
class BatchStats:
    """How big the batches were (for benchmarks and /metrics)."""

    batches: int = 0
    items: int = 0
    retried_alone: int = 0
    # Writers the store refused for a conflict without failing the rest of their batch.
    refused: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)
        bucket = 1 << (size - 1).bit_length()  # 1, 2, 4, 8, ...
        self.sizes[bucket] = self.sizes.get(bucket, 0) + 1


class GroupCommit:
    """Gathers concurrent saves into one transaction; thread-safe."""

    def __init__(
        self,
        save: Save,
        max_batch: int = 200,
        max_wait: float = 0.002,
        on_saved: OnSaved | None = None,
        blame: Blame | None = None,
        clock: Callable[[], float] = time.monotonic,
        settle: Callable[[list[Recording[Any]]], None] | None = None,
    ) -> None:
        self._save = save
        self._clock = clock
        self._on_saved = on_saved
        self._settle = settle
        self._blame = blame
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._cond = threading.Condition()
        self._pending: list[_Item] = []
        self._closed = False
        self.stats = BatchStats()
        # Projection is the second stage of a pipeline: while one batch is projected, the
        # next is already being committed. Batches are projected in commit order, and their
        # writers are answered only after it (read-your-writes).
        self._to_project: queue.SimpleQueue[tuple[list[_Item], list[Recording[Any]]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(
            target=self._flush_forever, name="group-commit", daemon=True
        )
        self._projector = threading.Thread(
            target=self._project_forever, name="group-commit-projection", daemon=True
        )
        self._to_settle: queue.SimpleQueue[tuple[list[_Item], list[Recording[Any]]] | None] = (
            queue.SimpleQueue()
        )
        # The third stage exists only where projecting can leave a batch waiting.
        self._settler: threading.Thread | None = None
        if settle is not None:
            self._settler = threading.Thread(
                target=self._settle_forever, name="group-commit-settle", daemon=True
            )
        self._thread.start()
        self._projector.start()
        if self._settler is not None:
            self._settler.start()

    def save(self, events: Sequence[Any]) -> list[Recording[Any]]:
        """Save events durably (with whatever else arrives now); raises what their save raised."""
        item = _Item(list(events), done=threading.Event())
        self._enqueue(item)
        assert item.done is not None
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.recordings

    async def save_async(self, events: Sequence[Any]) -> list[Recording[Any]]:
        """`save` for a writer on an event loop: awaits durability without holding a thread."""
        item = _Item(list(events), future=asyncio.get_running_loop().create_future())
        self._enqueue(item)
        assert item.future is not None
        return await item.future

    def _enqueue(self, item: _Item) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("group commit is closed")
            item.since = self._clock()
            self._pending.append(item)
            self._cond.notify_all()

    def _take(self) -> list[_Item]:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            # The wait counts from the oldest writer's arrival, not from now: under load,
            # writers that arrived during the previous flush have waited long enough already.
            deadline = self._pending[0].since + self._max_wait if self._pending else 0.0
            while len(self._pending) < self._max_batch and not self._closed:
                left = deadline - self._clock()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            return batch

    def _flush_forever(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                self._to_project.put(None)
                return
            self.stats.record(len(batch))
            self._flush(batch)

    def _project_forever(self) -> None:
        while (work := self._to_project.get()) is not None:
            items, recordings = work
            # A batch with nothing saved (every writer refused) still goes through in order.
            if (recordings and self._saved(recordings)) or self._settle is None:
                _wake(items)
            else:
                self._to_settle.put(work)
        self._to_settle.put(None)

    def _settle_forever(self) -> None:
        while (work := self._to_settle.get()) is not None:
            items, recordings = work
            assert self._settle is not None
            try:
                self._settle(recordings)
            except Exception as exc:  # durable already; each writer's own read waits instead
                log.warning(
                    "a saved batch was not seen applied", extra={"error": type(exc).__name__}
                )
            _wake(items)

    def _durable(self, items: list[_Item], recordings: list[Recording[Any]]) -> None:
        """Answer the items once their batch (and every batch before it) is projected: every
        outcome, also a writer's conflict or failure, so that when it looks again it sees
        what was stored before it."""
        if self._on_saved is None:
            _wake(items)
        else:
            self._to_project.put((items, recordings))

    def _flush(self, batch: list[_Item]) -> None:
        writers = [i for i, item in enumerate(batch) for _ in item.events]
        try:
            recordings = self._save(*(e for item in batch for e in item.events), writers=writers)
        except STORE_DOWN as exc:  # the store is unreachable: every writer of the batch hears it
            for item in batch:
                item.error = exc
            self._durable(batch, [])
            return
        except Exception as exc:  # a conflict, or one item that cannot be stored (an erased key)
            self._retry(batch, exc)
            return
        start = 0
        for item in batch:
            self._take_recordings(item, recordings[start : start + len(item.events)])
            start += len(item.events)
        self._durable(batch, [r for item in batch for r in item.recordings])

    def _take_recordings(self, item: _Item, recordings: list[Recording[Any] | None]) -> None:
        """Give the item its recordings, or, if the store refused it, the conflict (it alone
        hears it)."""
        if None in recordings:
            self.stats.refused += 1
            item.error = IntegrityError("a concurrent change got there first")
        else:
            item.recordings = cast(list[Recording[Any]], recordings)

    def _saved(self, recordings: list[Recording[Any]]) -> bool:
        assert self._on_saved is not None
        try:
            return bool(self._on_saved(recordings))
        except Exception:  # durable already; the projection runner will pick the events up
            log.exception("projecting a saved batch directly failed; left to the runner")
            return False

    def _retry(self, batch: list[_Item], exc: Exception) -> None:
        """Save a failed batch again without the items its error names, then those alone."""
        if len(batch) == 1:  # the error is that item's own: saving it again would repeat it
            batch[0].error = exc
            self._durable(batch, [])
            return
        implicated = self._blame(exc) if self._blame is not None else None
        suspects: list[_Item] = []
        rest: list[_Item] = []
        for item in batch:
            named = implicated is not None and any(map(implicated, item.events))
            (suspects if named else rest).append(item)
        if not suspects:
            self._one_by_one(batch)
            return
        if rest:
            self._flush(rest)
        self._one_by_one(suspects)

    def _one_by_one(self, batch: list[_Item]) -> None:
        for item in batch:
            self.stats.retried_alone += 1
            try:
                recordings = self._save(*item.events, writers=[0] * len(item.events))
            except Exception as exc:  # this item's own failure, reported to its writer only
                item.error = exc
            else:
                self._take_recordings(item, recordings)
            self._durable([item], item.recordings)

    def close(self) -> None:
        """Flush what is pending and stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)
        self._projector.join(timeout=10)
        if self._settler is not None:
            self._settler.join(timeout=10)


def _wake(items: list[_Item]) -> None:
    """Tell each writer its outcome: threads directly, each event loop with one call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
    for item in items:
        if item.future is None:
            assert item.done is not None
            item.done.set()
        else:
            by_loop.setdefault(item.future.get_loop(), []).append(item)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, waiting)


def _settle(items: list[_Item]) -> None:
    for item in items:
        future = item.future
        if future is None or future.done():  # cancelled: the client went away, the write stays
            continue
        if item.error is not None:
            future.set_exception(item.error)
        else:
            future.set_result(item.recordings)
