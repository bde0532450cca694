"""Replays of creating POSTs whose answer cannot be rebuilt (it holds a new token).

The aggregates' ids derive from the Idempotency-Key, so a retry never creates twice; this
cache only lets the retry see the first answer again. A key reused with another body is
refused (422), as the IETF Idempotency-Key draft advises.
"""

from __future__ import annotations

import hashlib

from litestar.exceptions import HTTPException

from domain.ports import AnswerStore


class IdempotencyKeyMismatchError(HTTPException):
    """The key was used before with a different request body."""

    status_code = 422


class ResponseCache:
    """(scope, key) -> (body fingerprint, answer), over a memory or Redis store."""

    def __init__(self, store: AnswerStore) -> None:
        self._store = store

    @staticmethod
    def fingerprint(body: bytes) -> str:
        """What identifies a request body."""
        return hashlib.sha256(body).hexdigest()

    def get(self, scope: str, key: str, fingerprint: str) -> bytes | None:
        """The first answer given for this key, if still known."""
        found = self._store.load(scope, key)
        if found is None:
            return None
        if found[0] != fingerprint:
            raise IdempotencyKeyMismatchError("this Idempotency-Key was used with another body")
        return found[1]

    def put(self, scope: str, key: str, fingerprint: str, answer: bytes) -> None:
        """Remember an answer."""
        self._store.save(scope, key, fingerprint, answer)
