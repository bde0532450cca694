"""Redis pieces shared by the workers: cached answers (encrypted) and the exposure feed."""

from __future__ import annotations

import hashlib
import logging

import redis

from infrastructure.keys.crypto import DecryptionError, seal, unseal

log = logging.getLogger("fangxin.events")

ANSWER_TTL_SECONDS = 24 * 3600


class RedisAnswerStore:
    """Answers of creating requests, sealed with a service key: they hold bearer tokens."""

    def __init__(self, client: redis.Redis, prefix: str, key: bytes) -> None:
        self._r = client
        self._p = prefix
        self._key = key

    def _name(self, scope: str, key: str) -> str:
        digest = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
        return f"{self._p}answer:{digest}"

    def load(self, scope: str, key: str) -> tuple[str, bytes] | None:
        """(fingerprint, answer) of an earlier request with this key."""
        name = self._name(scope, key)
        raw = self._r.get(name)
        if not isinstance(raw, bytes):
            return None
        try:
            plain = unseal(self._key, raw, name.encode())
        except DecryptionError:
            return None
        fingerprint, _, answer = plain.partition(b"\n")
        return fingerprint.decode(), answer

    def save(self, scope: str, key: str, fingerprint: str, answer: bytes) -> None:
        """Keep an answer for a day."""
        name = self._name(scope, key)
        sealed = seal(self._key, fingerprint.encode() + b"\n" + answer, name.encode())
        self._r.set(name, sealed, ex=ANSWER_TTL_SECONDS)
