"""Replays of creating POSTs whose answer cannot be rebuilt (it holds a new token).

The aggregates' ids derive from the Idempotency-Key, so a retry never creates twice; this
cache only lets the retry see the first answer again. A key reused with another body is
refused (422), as the IETF Idempotency-Key draft advises.

A replayed answer hands over a bearer token to whoever sends the same key and body, so it is
given only for `TOKEN_REPLAY_SECONDS` after the first answer (long enough for a client's
retries after a lost answer); later the domain refuses the reused key (409) and no token is
shown. Anonymous registrations also need a key too long to guess (`MIN_ANONYMOUS_KEY`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from litestar.exceptions import HTTPException

from domain.errors import InvalidInputError
from domain.ports import AnswerStore, Clock

TOKEN_REPLAY_SECONDS = 600
MIN_ANONYMOUS_KEY = 16


class IdempotencyKeyMismatchError(HTTPException):
    """The key was used before with a different request body."""

    status_code = 422


class ResponseCache:
    """(scope, key) -> (body fingerprint, answer), over a memory or Redis store."""

    def __init__(self, store: AnswerStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

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
        stamp, _, answer = found[1].partition(b"\n")
        if not stamp.isdigit() or self._now() - int(stamp) > TOKEN_REPLAY_SECONDS:
            return None
        return answer

    def put(self, scope: str, key: str, fingerprint: str, answer: bytes) -> None:
        """Remember an answer, with when it was given."""
        self._store.save(scope, key, fingerprint, b"%d\n" % self._now() + answer)

    def answer_once(
        self, scope: str, key: str | None, body: bytes, make: Callable[[str | None], bytes]
    ) -> bytes:
        """The first answer for this key and body while it may be replayed, else a new one."""
        fingerprint = self.fingerprint(body)
        if key is not None and (replay := self.get(scope, key, fingerprint)) is not None:
            return replay
        answer = make(key)
        if key is not None:
            self.put(scope, key, fingerprint, answer)
        return answer

    def _now(self) -> int:
        return int(self._clock.now().timestamp())


def anonymous_key(key: str | None) -> str | None:
    """An Idempotency-Key of a request without a token: it must be too long to guess."""
    if key is not None and len(key) < MIN_ANONYMOUS_KEY:
        raise InvalidInputError(
            f"Idempotency-Key must have at least {MIN_ANONYMOUS_KEY} characters here"
            " (a random UUID): a guessable key would let others replay the answer"
        )
    return key
