"""Background duties of a process: automatic check-outs, retention and key compaction, each
on a thread of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from domain.app import Fangxin

log = logging.getLogger("fangxin.duties")

RETENTION_EVERY_SECONDS = 3600.0


class Duties:
    """Closes visits past their venue's maximum dwell and shreds days past retention."""

    def __init__(self, app: Fangxin, retention_days: int, interval: float) -> None:
        self._app = app
        self._retention_days = retention_days
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retention = 0.0

    def run_once(self) -> tuple[int, int]:
        """One round: (visits closed automatically, visits dropped by retention)."""
        closed = self._app.auto_check_out()
        dropped = 0
        if time.monotonic() - self._last_retention >= RETENTION_EVERY_SECONDS:
            dropped = self._app.apply_retention(self._retention_days)
            self._last_retention = time.monotonic()
        return closed, dropped

    def start(self) -> None:
        """Run a round now and then every `interval` seconds."""
        self._last_retention = -RETENTION_EVERY_SECONDS
        self._thread = threading.Thread(target=self._loop, name="duties", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                closed, dropped = self.run_once()
                if closed or dropped:
                    log.info("duties", extra={"auto_closed": closed, "retention_dropped": dropped})
            except Exception:
                # Logged, then retried next round: a visit left open is closed later, not lost.
                log.exception("background duties failed; retrying next round")
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


# A destruction wakes the compaction at once; this is how often it looks anyway, for marks
# left by another process (one that stopped before compacting, or whose role could not).
COMPACT_EVERY_SECONDS = 60.0


class KeyCompaction:
    """Removes what destroyed keys left in the key store's files, soon after each destruction,
    on a thread of its own: never on the request that erased."""

    def __init__(self, compact: Callable[[], int], interval: float = COMPACT_EVERY_SECONDS) -> None:
        self._compact = compact
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def soon(self, _destroyed: list[bytes]) -> None:
        """Compact after these keys were destroyed (a key store's `on_destroy` listener)."""
        self._wake.set()

    def start(self) -> None:
        """Compact now, then after each destruction and every `interval` seconds."""
        self._thread = threading.Thread(target=self._loop, name="key-compaction", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                rewritten = self._compact()
                if rewritten:
                    log.info("key compaction", extra={"rewritten": rewritten})
            except Exception:
                # Logged, then retried: the marks stay until their partition is rewritten.
                log.exception("key compaction failed; retrying next round")
            self._wake.wait(self._interval)

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
