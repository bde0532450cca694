"""The production projection runner: one per deployment, elected with a Redis lock.

Every worker process has one, but only the holder of the lock applies events; when its worker
dies the lock expires and another worker's runner takes over from the tracking position stored
in Redis. Writers ring a doorbell after each commit so the runner wakes at once, and wait until
the position passes their own events (read-your-writes, across workers).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from uuid import UUID

import redis
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Mapper, Recording

from domain.errors import UnavailableError
from infrastructure.projections.election import RENEW_EVERY, FaultNotice, RunnerLock
from infrastructure.projections.health import (
    RUNNING,
    STOPPED,
    Failures,
    ProjectionFailingError,
    RunnerState,
    scrubbed,
)
from infrastructure.projections.parked import ParkedBatches
from infrastructure.projections.read_ahead import read_ahead
from infrastructure.projections.runner import Projector
from infrastructure.readmodels.redis.projection import RedisProjector

log = logging.getLogger("fangxin.projections")

BATCH = 500
WAIT_TIMEOUT = 10.0
# How long a writer waits for other workers to project their own earlier events before it
# asks the runner to read them from the log.
HANDOVER = 0.02
# How long a writer stuck before its own batch waits to ask the log whether only gaps lie between.
GAP_CHECK = 0.002
# How often a waiting writer asks Redis for the position when no announcement came.
POLL_EVERY = 0.005
# The shortest sleep of a waiting writer between its checks.
MIN_WAIT = 0.0005
# Redis (or the network) being unreachable: a pause, shown by /health as Redis unavailable, not
# a failure to apply an event.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


class ProjectionUnavailableError(UnavailableError):
    """The read models did not catch up in time (no runner is alive)."""

    kind = "projection-unavailable"


class RedisProjectionRunner:
    """Follows the notification log into Redis while holding the deployment's runner lock.

    An event that cannot be applied stops the runner there, not its thread: it keeps the lock
    and tries again after a growing wait (`Failures`), and says so in Redis for every worker's
    `/health`. Meanwhile writers are answered without waiting for their events.
    The `also` projectors get an event again when it is tried again: they must be idempotent.
    """

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        projector: RedisProjector,
        client: redis.Redis,
        also: list[Projector],
        failures: Failures | None = None,
        on_written: list[Callable[[list[DomainEventProtocol[UUID]]], None]] | None = None,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._projector = projector
        self._client = client
        self._also = also
        self._prefix = projector.prefix
        self._doorbell = self._prefix + "doorbell"
        self._failures = failures or Failures()
        self._lock = RunnerLock(client, self._prefix + "runner-lock")
        self._fault = FaultNotice(client, self._prefix + "runner-fault", self._failures)
        self._apply_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_written = on_written or []  # told of own projected events, to refresh caches
        # The highest position this process saw applied (positions only ever grow).
        self._seen = 0
        self._own = ParkedBatches(recorder, projector)
        # Notified when the feed announces that the position moved.
        self._moved = threading.Condition()

    @property
    def position(self) -> int:
        """The last notification id applied (deployment-wide)."""
        return self._projector.position()

    @property
    def is_leader(self) -> bool:
        """Whether this process applies events now."""
        return self._lock.held

    def state(self) -> RunnerState:
        """This process's runner thread stopped, or the deployment's runner running or failing."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._stop.is_set():
            return STOPPED
        own = self._failures.current
        if own is not None or self.is_leader:
            return own or RUNNING
        return self._fault.told() or RUNNING

    def add_projector(self, projector: Projector) -> None:
        """Apply the events from the next one on to `projector` too (see `also`)."""
        with self._apply_lock:
            self._also.append(projector)

    def _hold_lock(self) -> bool:
        return self._lock.hold()

    def catch_up(self) -> int:
        """Apply every new event if this process is the runner; returns how many."""
        applied = 0
        with self._apply_lock:
            while self.is_leader:
                start = self._projector.position()
                notifications = self._recorder.select_notifications(
                    start=start, limit=BATCH, inclusive_of_start=False
                )
                if not notifications:
                    return applied
                batch: list[tuple[int, DomainEventProtocol[UUID]]] = []
                for notification in notifications:
                    try:
                        event = self._mapper.to_domain_event(notification)
                        for projector in self._also:
                            projector.apply(event)
                    except Exception:
                        # What came before it is applied: a retry starts at this event.
                        self._projector.apply_batch(batch)
                        raise
                    batch.append((notification.id, event))
                applied += self._projector.apply_batch(batch)
                if len(notifications) < BATCH:
                    return applied
        return applied

    def rebuild(self, progress: Callable[[int, int], None], batch: int = 2000) -> int:
        """Drop the read models and replay the whole log into them; returns events applied."""
        deadline = time.monotonic() + 30
        while not self._hold_lock():
            if time.monotonic() > deadline:
                raise ProjectionUnavailableError("another runner holds the lock")
            time.sleep(0.5)
        with self._apply_lock:
            self._projector.clear()
            self._hold_lock()
            total = self._recorder.max_notification_id() or 0
            done = 0
            last_renewal = time.monotonic()
            # Reading and decrypting the next batch overlaps with Redis applying this one.
            for events in read_ahead(self._decrypted_batches(batch)):
                for _, event in events:
                    for projector in self._also:
                        projector.apply(event)
                self._projector.apply_batch(events)
                done += len(events)
                progress(done, total)
                if time.monotonic() - last_renewal > RENEW_EVERY:
                    self._hold_lock()
                    last_renewal = time.monotonic()
            return done

    def _decrypted_batches(
        self, batch: int
    ) -> Iterator[list[tuple[int, DomainEventProtocol[UUID]]]]:
        position = 0
        while True:
            notifications = self._recorder.select_notifications(
                start=position, limit=batch, inclusive_of_start=False
            )
            if not notifications:
                return
            yield [(n.id, self._mapper.to_domain_event(n)) for n in notifications]
            position = notifications[-1].id

    def written(self, recordings: list[Recording[UUID]]) -> None:
        """Read-your-writes for events just saved by this process.

        The events are durable already: if Redis is unreachable the write is still answered
        (the runner applies them once Redis is back); only reads wait for Redis.
        """
        if not recordings:
            return
        try:
            self.wait_for(max(r.notification.id for r in recordings))
        except ProjectionFailingError:
            return  # durable; applied once the runner recovers (/health says 503 until then)
        except redis.RedisError as exc:
            log.warning(
                "read models unreachable after a write", extra={"error": type(exc).__name__}
            )
            return
        for listener in self.on_written:
            listener([r.domain_event for r in recordings])

    def send_own(self, recordings: list[Recording[UUID]]) -> bool:
        """Send events this process just saved to Redis, from memory.

        Called by the group commit's projection stage right after a commit: no read back
        from PostgreSQL, no decryption. The batch is sent once, chained to the position before
        it. If another worker's earlier batch is not applied yet, Redis parks this one and the
        call that applies the earlier one applies it too. The batch is kept here only for the
        case where what lies before it is a gap (see `wait_for`). The runner applies it from
        the log in any case. Returns whether the batch is applied now.
        """
        ordered = sorted(recordings, key=lambda r: r.notification.id)
        if not ordered:
            return True
        if self._fault.failing(ask=False):
            return False  # stuck behind the failing event anyway: the runner reads them later
        batch = [(r.notification.id, r.domain_event) for r in ordered]
        try:
            for _, event in batch:
                for projector in self._also:
                    projector.apply(event)
        except Exception:  # the runner tries it again, and logs how it failed
            return False
        encoded = self._projector.encode(batch, chained=True)
        if self._projector.apply_encoded(encoded, after=encoded.first - 1) >= 0:
            self._passed(encoded.last)
            return True
        # Parked behind another worker's batch. Kept in commit order: this stage sends the
        # process's batches one after another.
        self._own.keep(encoded)
        return False

    def own_applied(self, recordings: list[Recording[UUID]]) -> None:
        """Wait until the position passes events `send_own` sent (in the group commit's own
        thread, holding no request); their writers are answered after, so they read their own
        writes. It never delays the next commit, nor the sending of the next batch."""
        if recordings:
            with contextlib.suppress(ProjectionFailingError):  # durable; applied on recovery
                self.wait_for(max(r.notification.id for r in recordings))

    def _passed(self, position: int) -> None:
        """The position is known to have passed `position`: forget the batches it covers."""
        if position > self._seen:
            self.announced(position)  # wakes whoever waits for it
        self._own.passed(self._seen)

    def has_applied(self, position: int) -> bool:
        """Whether this process saw the position pass `position`."""
        return self._seen >= position

    def announced(self, position: int) -> None:
        """The position moved (the feed says so): wake the writers waiting for it."""
        with self._moved:
            if position > self._seen:
                self._fault.moved()
            self._seen = max(self._seen, position)
            self._moved.notify_all()

    def wait_for(self, position: int) -> None:
        """Read-your-writes: return once the position has passed `position`.

        Events before this process's own come from other workers, which project their own
        batches within a few milliseconds and announce each move of the position; Redis is
        asked directly only when no announcement came for `POLL_EVERY`. If the
        position has not passed after `HANDOVER` (a gap left by a rolled-back transaction, or
        a worker that died between commit and projection), the runner is rung to read the log.
        """
        if self._seen >= position:
            return
        if self._fault.failing(ask=False):
            raise ProjectionFailingError("the read models are behind; retry shortly")
        started = time.monotonic()
        next_bid = started + HANDOVER
        # Redis is asked for the position only when no announcement came for a while.
        next_poll = started + POLL_EVERY
        rang = False
        last_seen = gap_checked = -1
        moved_at = started
        while True:
            now = time.monotonic()
            if now >= next_poll:
                self._seen = max(self._seen, self._projector.position())
                next_poll = now + POLL_EVERY
            seen = self._seen
            if seen >= position:
                self._passed(seen)
                return
            if seen != last_seen:
                last_seen, moved_at = seen, now
            elif self._own and now - moved_at >= GAP_CHECK and gap_checked != seen:
                # Stuck before a kept batch: maybe nothing is missing but unused ids. The check
                # needs the position itself, not the last announcement.
                current = self._projector.position()
                gap_checked = self._seen = max(self._seen, current)
                if current == gap_checked and self._own.only_gaps_before(current):
                    last = self._own.send_after_gap(current)
                    if last is not None:
                        self._passed(last)
                    next_poll = now
                    continue
            if now - started >= HANDOVER:
                if not rang:
                    self._client.lpush(self._doorbell, "1")
                    rang = True
                if self._fault.failing(ask=now >= next_bid and not self.is_leader):
                    raise ProjectionFailingError("the read models are behind; retry shortly")
                if self.is_leader or (now >= next_bid and self._hold_lock()):
                    # No runner alive elsewhere (or it is us): apply the events here.
                    self._try_to_catch_up()
                    next_poll = now
                    continue
                if now >= next_bid:
                    next_bid = now + 0.1
            if now - started > WAIT_TIMEOUT:
                raise ProjectionUnavailableError("the read models are behind; retry shortly")
            # Woken by the next announcement, or at the next deadline of this loop: not on a
            # fixed short tick, which woke every waiting thread for nothing (and took the GIL).
            wake = min(next_poll, started + HANDOVER if not rang else next_bid)
            if self._own and gap_checked != seen:
                wake = min(wake, moved_at + GAP_CHECK)
            with self._moved:
                if self._seen == seen:
                    self._moved.wait(timeout=min(max(wake - now, MIN_WAIT), POLL_EVERY))

    def _try_to_catch_up(self) -> None:
        """`catch_up`, noting a failure (and saying it in Redis) or a recovery."""
        try:
            self.catch_up()
        except UNREACHABLE:
            raise
        except Exception as error:
            position = None
            with contextlib.suppress(redis.RedisError):
                position = self._projector.position()
            self._failures.failed(error, position)
            with contextlib.suppress(redis.RedisError):
                self._fault.announce()
            raise ProjectionFailingError("the read models are behind; retry shortly") from None
        if self._failures.recovered():
            self._fault.clear()

    def start(self) -> None:
        """Run for the lock and, while holding it, follow the log."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="redis-runner", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        last_renewal = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_renewal >= RENEW_EVERY or not self.is_leader:
                    self._hold_lock()
                    last_renewal = time.monotonic()
                    if self.is_leader:
                        self._fault.announce()  # again, while it lasts
                    else:
                        self._failures.forget()  # the new runner tries for itself
                if not self.is_leader:
                    self._stop.wait(RENEW_EVERY)
                    continue
                if not self._failures.due():
                    self._stop.wait(min(self._failures.delay(0.0), RENEW_EVERY / 2))
                    continue
                with contextlib.suppress(ProjectionFailingError):  # noted: tried again later
                    self._try_to_catch_up()
                if self._failures.current is None:
                    # Sleep until a writer rings, at most until the next renewal.
                    self._client.blpop([self._doorbell], timeout=RENEW_EVERY / 2)
                    self._client.delete(self._doorbell)
            except (redis.RedisError, OSError) as exc:
                log.warning("projection runner paused", extra={"error": type(exc).__name__})
                self._lock.lost()
                self._stop.wait(RENEW_EVERY)
            except Exception as exc:  # the thread lives on whatever happens
                log.error(
                    "projection runner paused",
                    exc_info=scrubbed(exc),
                    extra={"error": type(exc).__name__},
                )
                self._stop.wait(RENEW_EVERY)

    def stop(self) -> None:
        """Stop following and give the lock up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._lock.release()
