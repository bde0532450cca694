"""Projections: follow the application's notification log and update the read models.

The runner keeps a tracking position (the last notification id applied) and applies each
event once, in log order. A writer waits for its own position (read-your-writes); a
background thread picks up what other processes wrote.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Mapper, Recording

from infrastructure.projections.health import (
    RUNNING,
    STOPPED,
    Failures,
    ProjectionFailingError,
    RunnerState,
)

log = logging.getLogger("fangxin.projections")

BATCH = 1000


class Projector(Protocol):
    """Something that applies events of the log, in order."""

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        """Apply one event."""
        ...


class ProjectionRunner:
    """Follows the notification log from its tracking position, applying each event once.

    An event a projector fails to apply stops the runner there, not its thread: it is tried
    again after a growing wait (`Failures`), and the projectors that applied it already are
    not given it again. Meanwhile writers are answered without waiting for their events.
    """

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        projectors: list[Projector],
        poll_interval: float = 0.5,
        failures: Failures | None = None,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._projectors = projectors
        self._poll_interval = poll_interval
        self._failures = failures or Failures()
        self._lock = threading.Lock()
        self._position = 0
        # An event that some projectors applied before the next one failed: (its notification
        # id, how many applied it); a retry gives it to the others only.
        self._partial: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def position(self) -> int:
        """The last notification id applied."""
        return self._position

    def state(self) -> RunnerState:
        """Running, failing (since when, with what error), or stopped."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._stop.is_set():
            return STOPPED
        return self._failures.current or RUNNING

    def add_projector(self, projector: Projector) -> None:
        """Apply the events from the next one on to `projector` too."""
        with self._lock:
            self._projectors.append(projector)

    def catch_up(self) -> int:
        """Apply every new event; returns how many were applied."""
        applied = 0
        with self._lock:
            while True:
                count = self._apply_next(BATCH)
                applied += count
                if count < BATCH:
                    return applied

    def rebuild(self, progress: Callable[[int, int], None], batch: int = 2000) -> int:
        """Replay the whole log into the (fresh) projectors; returns events applied.

        The read models it builds are millions of long-lived objects, which the garbage
        collector's collections walked again and again (a quarter of a rebuild's time). So
        after each batch what is alive is moved out of the collector's sight (`gc.freeze`);
        at the end it is all handed back (`gc.unfreeze`), so garbage among it is still
        collected. Only when nothing else froze anything: unfreezing would hand that back too.
        """
        total = self._recorder.max_notification_id() or 0
        done = 0
        freezing = gc.get_freeze_count() == 0
        with self._lock:
            self._position = 0
            self._partial = None
            try:
                while count := self._apply_next(batch):
                    done += count
                    if freezing:
                        gc.freeze()
                    progress(done, total)
                return done
            finally:
                if freezing:
                    gc.unfreeze()

    def resume(self, position: int, topics: Sequence[str]) -> int:
        """Give the (fresh) projectors only the events of `topics` up to `position`, then stand
        at `position`: what the other events made, the read models were given from elsewhere
        (the embedded start loads the open visits from the history instead of replaying every
        check-in). Returns events applied."""
        done = 0
        with self._lock:
            self._position = 0
            self._partial = None
            while True:
                notifications = self._recorder.select_notifications(
                    start=self._position,
                    limit=BATCH,
                    stop=position,
                    topics=topics,
                    inclusive_of_start=False,
                )
                for notification in notifications:
                    self._apply(notification.id, self._mapper.to_domain_event(notification))
                done += len(notifications)
                if len(notifications) < BATCH:
                    break
            self._position = position
        return done

    def _apply_next(self, limit: int) -> int:
        """Apply up to `limit` events after the position (the caller holds the lock)."""
        notifications = self._recorder.select_notifications(
            start=self._position, limit=limit, inclusive_of_start=False
        )
        for notification in notifications:
            self._apply(notification.id, self._mapper.to_domain_event(notification))
        return len(notifications)

    def _apply(self, notification_id: int, event: DomainEventProtocol[UUID]) -> None:
        """Give one event to each projector that has not applied it (the caller holds the lock)."""
        start = 0
        if self._partial is not None and self._partial[0] == notification_id:
            start = self._partial[1]
        projectors = self._projectors
        for index in range(start, len(projectors)):
            try:
                projectors[index].apply(event)
            except BaseException:
                self._partial = (notification_id, index)
                raise
        self._partial = None
        self._position = notification_id

    def has_applied(self, position: int) -> bool:
        """Whether `position` is applied."""
        return self._position >= position

    def wait_for(self, position: int) -> None:
        """Read-your-writes: return once `position` is applied.

        Raises `ProjectionFailingError` at once while the runner fails: only the runner tries
        again, after its wait.
        """
        if self._position >= position:
            return
        if self._failures.current is not None:
            raise ProjectionFailingError("the read models are behind; retry shortly")
        try:
            self.catch_up()
        except Exception as error:
            self._failures.failed(error, self._position)
            raise ProjectionFailingError("the read models are behind; retry shortly") from None

    def apply_own(self, recordings: list[Recording[UUID]]) -> None:
        """Apply events this process just saved straight from memory when they come next.

        Called with each group-committed batch: no need to read and decrypt them back.
        Anything out of order, or written by another process, is read from the log as usual;
        so is everything while the runner fails.
        """
        if self._failures.current is not None:
            return
        ordered = sorted(recordings, key=lambda r: r.notification.id)
        with self._lock:
            for recording in ordered:
                if recording.notification.id != self._position + 1:
                    break
                try:
                    self._apply(recording.notification.id, recording.domain_event)
                except Exception as error:
                    self._failures.failed(error, self._position)
                    return

    def written(self, recordings: list[Recording[UUID]]) -> None:
        """Read-your-writes for events this process saved.

        While the runner fails they are not waited for: they are durable, and the runner
        applies them once it recovers (`/health` says 503 until then).
        """
        if recordings:
            with contextlib.suppress(ProjectionFailingError):
                self.wait_for(max(r.notification.id for r in recordings))

    def start(self) -> None:
        """Follow the log in a background thread (for writes of other processes)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="projection-runner", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self._failures.delay(self._poll_interval)):
            if not self._failures.due():
                continue
            try:
                self.catch_up()
            except Exception as error:  # the thread lives on: the next try starts at this event
                self._failures.failed(error, self._position)
            else:
                self._failures.recovered()

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Runner(Protocol):
    """A projection runner, in-process or elected across workers."""

    @property
    def position(self) -> int:
        """The last notification id applied."""
        ...

    def catch_up(self) -> int:
        """Apply what is new (if this process applies events)."""
        ...

    def wait_for(self, position: int) -> None:
        """Return once `position` is applied."""
        ...

    def has_applied(self, position: int) -> bool:
        """Whether this process knows `position` to be applied (no I/O)."""
        ...

    def state(self) -> RunnerState:
        """Running, failing (since when, with what error), or stopped."""
        ...

    def add_projector(self, projector: Projector) -> None:
        """Apply the events from the next one on to `projector` too."""
        ...

    def written(self, recordings: list[Recording[UUID]]) -> None:
        """Return once these events of this process are applied."""
        ...

    def start(self) -> None:
        """Start following the log."""
        ...

    def stop(self) -> None:
        """Stop following the log."""
        ...

    def rebuild(self, progress: Callable[[int, int], None], batch: int = 2000) -> int:
        """Drop the read models and replay the whole log."""
        ...
