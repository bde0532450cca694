"""Projectors for tests: one that fails on chosen events until healed, one that hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# A message quoting personal data, as a careless one might: it must stay out of the logs.
MESSAGE = "no row for +8613912345678 王秀英"


class FailingProjector:
    """Raises on every event `poisoned` picks until `heal()`; keeps what it applied."""

    def __init__(self, poisoned: Callable[[Any], bool]) -> None:
        self.poisoned = poisoned
        self.healed = threading.Event()
        self.applied: list[Any] = []
        self.failures = 0

    def apply(self, event: Any) -> None:
        if not self.healed.is_set() and self.poisoned(event):
            self.failures += 1
            raise LookupError(MESSAGE)
        self.applied.append(event)

    def heal(self) -> None:
        self.healed.set()


class BlockingProjector:
    """Holds every event `blocked` picks until `release` is set, as a hung projector would."""

    def __init__(self, blocked: Callable[[Any], bool]) -> None:
        self.blocked = blocked
        self.reached = threading.Event()
        self.release = threading.Event()

    def apply(self, event: Any) -> None:
        if self.blocked(event):
            self.reached.set()
            self.release.wait(timeout=60)


def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something true (its value), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)
