"""Idempotency answers in memory: one process's bounded, expiring dictionary."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class MemoryAnswerStore:
    """Answers in a bounded, expiring dictionary (one process)."""

    def __init__(self, ttl: float = 24 * 3600, max_entries: int = 100_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, str, bytes]] = OrderedDict()

    def load(self, scope: str, key: str) -> tuple[str, bytes] | None:
        """An unexpired answer."""
        with self._lock:
            entry = self._entries.get((scope, key))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    def save(self, scope: str, key: str, fingerprint: str, answer: bytes) -> None:
        """Keep an answer, evicting the oldest past the bound."""
        with self._lock:
            self._entries[(scope, key)] = (time.monotonic() + self._ttl, fingerprint, answer)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
