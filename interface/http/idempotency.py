"""Replays of creating POSTs whose answer cannot be rebuilt (it holds a new token).

The aggregates' ids derive from the Idempotency-Key, so a retry never creates twice; this
cache only lets the retry see the first answer again. A key reused with another body is
refused (422), as the IETF Idempotency-Key draft advises.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from litestar.exceptions import HTTPException

TTL_SECONDS = 24 * 3600
MAX_ENTRIES = 100_000


class IdempotencyKeyMismatchError(HTTPException):
    """The key was used before with a different request body."""

    status_code = 422


class ResponseCache:
    """(scope, key) -> (body fingerprint, answer), bounded and expiring."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, str, bytes]] = OrderedDict()

    @staticmethod
    def fingerprint(body: bytes) -> str:
        """What identifies a request body."""
        return hashlib.sha256(body).hexdigest()

    def get(self, scope: str, key: str, fingerprint: str) -> bytes | None:
        """The first answer given for this key, if still known."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is None or entry[0] < time.monotonic():
                return None
        if entry[1] != fingerprint:
            raise IdempotencyKeyMismatchError("this Idempotency-Key was used with another body")
        return entry[2]

    def put(self, scope: str, key: str, fingerprint: str, answer: bytes) -> None:
        """Remember an answer."""
        with self._lock:
            self._entries[(scope, key)] = (time.monotonic() + self._ttl, fingerprint, answer)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
