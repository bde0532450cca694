"""Keeps the history close behind the log: a thread that catches it up every 0.2 s.

Reads catch the history up themselves (so a client reads its own writes); this thread only keeps
that catch-up short. The embedded deployment runs it in its one process; production runs it in
one process of its own per deployment (`fangxin follow`, started by `fangxin serve`), niced, so
that the projection's CPU is not taken from the HTTP workers' event loops; its workers only
watch it (`FollowedElsewhere`). Several followers at once are still safe: the store serializes
catch-ups (an advisory lock in PostgreSQL), and each event is applied exactly once whoever
applies it. A failure is logged without its message and retried after a growing wait
(`Failures`), like the runner's; `/health` reports the history's state and lag beside the read
models'.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from infrastructure.history.port import History
from infrastructure.projections.health import RUNNING, STOPPED, Failures, LagWatch, RunnerState

HISTORY = "history"
CATCH_UP_EVERY_SECONDS = 0.2
# How long the history may stay behind without moving before a watcher calls it stalled.
STALLED_AFTER_SECONDS = 10.0


class HistoryFollower:
    """Calls `History.catch_up` every `interval` seconds on a thread of its own."""

    def __init__(
        self,
        history: History,
        newest: Callable[[], int],
        interval: float = CATCH_UP_EVERY_SECONDS,
        failures: Failures | None = None,
        fresh: Callable[[], History] | None = None,
    ) -> None:
        self.history = history
        self._newest = newest
        # Drops the history's tables and position, and opens it afresh (`rebuild`).
        self._fresh = fresh
        self._interval = interval
        self._failures = failures or Failures(HISTORY)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Catch up now, then every `interval` seconds."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="history", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._failures.due():
                self.catch_up_once()
            self._stop.wait(self._failures.delay(self._interval))

    def catch_up_once(self) -> int:
        """One catch-up; a failure is noted (and retried later), never raised."""
        try:
            applied = self.history.catch_up()
        except Exception as error:  # any failure of the store: logged, retried
            self._failures.failed(error, self._position())
            return 0
        self._failures.recovered()
        return applied

    def _position(self) -> int | None:
        try:
            return self.history.position()
        except Exception:  # the store is down: no position to report
            return None

    def state(self) -> RunnerState:
        """Running, failing (since when, with what), or stopped."""
        if self._thread is None or not self._thread.is_alive():
            return STOPPED
        return self._failures.current or RUNNING

    def lag(self) -> tuple[int, int]:
        """(position, how many events of the log the history has not applied yet)."""
        position = self.history.position()
        return position, max(0, self._newest() - position)

    def rebuild(self) -> int:
        """Drop the history and apply the whole log to it again (`fangxin rebuild`, with the
        workers stopped); returns how many events. The ports built on the old store are not
        to be read after it."""
        if self._fresh is None:
            return 0
        self.history = self._fresh()
        return self.history.catch_up()

    def stop(self) -> None:
        """Stop after the current catch-up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class FollowedElsewhere(HistoryFollower):
    """The history as an HTTP worker of production sees it: another process follows the log
    (`fangxin follow`), and this one only judges from the position whether it does.

    It runs no thread. Each `lag()` (asked by `/health` and `/metrics`) notes the position:
    the history is `running` while it is caught up or its position moved since the last look,
    and `stalled` once it has stayed behind without moving for `stalled_after` seconds (the
    follower is gone, or fails on an event: its own log says which). The same `LagWatch` as
    the read models', with no lag allowed but a moving position forgiven.
    """

    def __init__(
        self,
        history: History,
        newest: Callable[[], int],
        fresh: Callable[[], History] | None = None,
        stalled_after: float = STALLED_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(history, newest, fresh=fresh)
        self._watch = LagWatch(0, stalled_after, clock)
        self._judged = RUNNING

    def start(self) -> None:
        """Nothing to start: the follower runs in a process of its own."""

    def lag(self) -> tuple[int, int]:
        """(position, lag), noted for `state`."""
        position, lag = super().lag()
        since = self._watch.behind_since(lag, position)
        self._judged = RUNNING if since is None else RunnerState("stalled", since)
        return position, lag

    def state(self) -> RunnerState:
        """Running, or stalled (since when), as of the last `lag()`."""
        return self._judged
