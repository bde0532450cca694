"""`fangxin follow` beside the HTTP workers: one process per deployment, kept alive by `serve`.

The history's projection (read events back, decrypt, seal, insert into day partitions) takes
about 43 µs of CPU per event. In a thread of each HTTP worker it shared the worker's GIL and
cores with the check-ins' event loop; in a process of its own, niced, it takes the cores' spare
time instead (ADR 0014). `fangxin serve` starts it (with one worker or many), starts another
when it exits, after a wait that grows while it keeps exiting, and stops it on shutdown.

The child is `fangxin follow --parent PID`: it ignores SIGINT (a Ctrl+C in a terminal reaches
the whole process group; the server stops it itself, with SIGTERM, after its workers), and it
stops by itself when its parent is gone, should the server die without stopping it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from infrastructure.settings import Settings

log = logging.getLogger("fangxin.workers")

CHECK_EVERY_SECONDS = 0.5
FIRST_RESTART_WAIT = 0.5
LONGEST_RESTART_WAIT = 30.0
# A follower that ran this long before it exited starts again after the first wait.
RAN_WELL_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


class FollowerProcess:
    """One `fangxin follow` child process: started, restarted when it exits, stopped."""

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command or [
            sys.executable,
            "-m",
            "interface.cli",
            "follow",
            "--parent",
            str(os.getpid()),
        ]
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._wait = FIRST_RESTART_WAIT
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child, and a thread that starts another whenever it exits."""
        self._spawn()
        self._thread = threading.Thread(target=self._keep_alive, name="follower", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            # Its output goes where the server's does; same process group, so that whoever
            # kills the server's group kills it too.
            self._process = subprocess.Popen(self._command, stdin=subprocess.DEVNULL)  # noqa: S603 (our own command)
            self._started_at = time.monotonic()

    def _keep_alive(self) -> None:
        while not self._stop.wait(CHECK_EVERY_SECONDS):
            process = self._process
            if process is None or process.poll() is None:
                continue
            ran = time.monotonic() - self._started_at
            self._wait = FIRST_RESTART_WAIT if ran >= RAN_WELL_SECONDS else self._wait
            log.warning(
                "the history follower exited; starting another",
                extra={"pid": process.pid, "status": process.returncode},
            )
            if self._stop.wait(self._wait):
                return
            self._wait = min(self._wait * 2, LONGEST_RESTART_WAIT)
            self._spawn()

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after a while) and stop restarting it."""
        with self._lock:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_SECONDS)
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the history follower did not stop; killing it", extra={"pid": process.pid})
            process.kill()
            process.wait()


@contextlib.contextmanager
def follower_beside(settings: Settings) -> Iterator[FollowerProcess | None]:
    """A follower process while the server runs, where the server is to start it: production
    with `FANGXIN_HISTORY_FOLLOWER=serve` (embedded follows on a thread of its one process)."""
    if not settings.is_production or settings.history_follower != "serve":
        yield None
        return
    follower = FollowerProcess()
    follower.start()
    try:
        yield follower
    finally:
        follower.stop()
