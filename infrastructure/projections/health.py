"""A projection runner's health: its failures, retried with a growing wait, and its lag.

A runner that cannot apply an event keeps its thread and its tracking position: it logs the
failure, waits (0.5 s doubling up to 30 s) and tries the same event again, so the read models
stay behind rather than skip it. Meanwhile writes are still answered (they are durable in the
log) and `/health` answers 503 until the runner has caught up again.

The log gets the error's type and its traceback's frames, never its message: a message may
quote fields of the decrypted event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal

from domain.errors import UnavailableError

log = logging.getLogger("fangxin.projections")

READ_MODELS = "read_models"
FIRST_RETRY = 0.5
LONGEST_RETRY = 30.0


@dataclass(frozen=True)
class RunnerState:
    """What a projection runner does now: applies events, fails (since when, with what), has
    stopped, or (seen from another process: `FollowedElsewhere`) stays behind without moving
    (since when)."""

    state: Literal["running", "failing", "stopped", "stalled"]
    since: datetime | None = None
    error: str | None = None


RUNNING = RunnerState("running")
STOPPED = RunnerState("stopped")


class ProjectionFailingError(UnavailableError):
    """The runner fails to apply an event: what was written is durable, not yet readable."""

    kind = "projection-failing"


class ProjectionFailure(Exception):  # noqa: N818 (it stands in for an error; it is not one)
    """Stands in for a failure in the log: the error's type and frames, not its message."""


class Failures:
    """A runner's failures to apply events: logged, and retried after a growing wait."""

    def __init__(
        self,
        projection: str = READ_MODELS,
        first_retry: float = FIRST_RETRY,
        longest_retry: float = LONGEST_RETRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.projection = projection
        self._first = first_retry
        self._longest = longest_retry
        self._clock = clock
        self._lock = threading.Lock()
        self._current: RunnerState | None = None
        self._attempts = 0
        self._retry_at = 0.0

    @property
    def current(self) -> RunnerState | None:
        """The failing state, or None while events are applied."""
        return self._current

    def due(self) -> bool:
        """Whether it is time to try again (always, when nothing failed)."""
        return self._current is None or self._clock() >= self._retry_at

    def delay(self, otherwise: float) -> float:
        """Seconds until the next try when failing; `otherwise` when not."""
        if self._current is None:
            return otherwise
        return max(0.0, self._retry_at - self._clock())

    def failed(self, error: BaseException, position: int | None) -> None:
        """Note a failure after `position` (the last event applied) and when to try again."""
        with self._lock:
            self._attempts += 1
            wait = min(self._first * 2 ** min(self._attempts - 1, 16), self._longest)
            self._retry_at = self._clock() + wait
            kind = type(error).__name__
            first = self._current is None or self._current.error != kind
            since = self._current.since if self._current else datetime.now(UTC)
            self._current = RunnerState("failing", since, kind)
            attempts = self._attempts
        extra = {
            "projection": self.projection,
            "position": position,
            "error_type": kind,
            "count": attempts,
        }
        if first:
            log.error("applying an event failed; will retry", exc_info=scrubbed(error), extra=extra)
        else:
            log.warning("applying an event failed again; will retry", extra=extra)

    def recovered(self) -> bool:
        """Note that events are applied again; returns whether they were failing."""
        if self._current is None:
            return False
        with self._lock:
            attempts, self._attempts = self._attempts, 0
            self._current = None
        log.info("applying events again", extra={"projection": self.projection, "count": attempts})
        return True

    def forget(self) -> None:
        """Drop the failure without a word (another process applies events now)."""
        with self._lock:
            self._current, self._attempts = None, 0


def scrubbed(
    error: BaseException,
) -> tuple[type[ProjectionFailure], ProjectionFailure, TracebackType | None]:
    """`exc_info` for logging `error` without its message (nor its causes' messages)."""
    return ProjectionFailure, stand_in(error), error.__traceback__


def stand_in(error: BaseException, depth: int = 0) -> ProjectionFailure:
    """`error` for the log: its frames and type, and so for its causes, none of its message."""
    kind = type(error)
    substitute = ProjectionFailure(f"{kind.__module__}.{kind.__qualname__}")
    substitute = substitute.with_traceback(error.__traceback__)
    if depth < 8:
        if error.__cause__ is not None:
            substitute.__cause__ = stand_in(error.__cause__, depth + 1)
        elif error.__context__ is not None and not error.__suppress_context__:
            substitute.__context__ = stand_in(error.__context__, depth + 1)
    return substitute


class LagWatch:
    """Whether a projection has stayed more than `limit` events behind for `grace` seconds.

    Asked by each `/health` request; a lag over the limit is counted from the first answer
    that saw it. A short burst of writes (a few group commits) never lasts that long. Given the
    projection's position too, a position that moved since the last answer counts afresh: a
    projection applied in another process is then judged by whether it moves, not by whether
    it ever reaches the very newest event of a busy log.
    """

    def __init__(
        self, limit: int, grace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._grace = grace
        self._clock = clock
        self._lock = threading.Lock()
        self._over_since: tuple[float, datetime] | None = None
        self._position: int | None = None

    def behind_since(self, lag: int, position: int | None = None) -> datetime | None:
        """When the lag went over the limit, once it has stayed over it for the grace period
        (and, given the position, without the position moving meanwhile)."""
        now = self._clock()
        with self._lock:
            moved = position is not None and position != self._position
            self._position = position
            if lag <= self._limit:
                self._over_since = None
                return None
            if self._over_since is None or moved:
                self._over_since = (now, datetime.now(UTC))
            started, since = self._over_since
        return since if now - started >= self._grace else None
