"""Keyed pseudonyms and sealed records: what the read side keeps instead of ids and names.

Redis is shared by every worker and is run, copied and administered apart from the service,
so it must neither tell who was where nor grant powers. Its key names carry keyed pseudonyms
of ids (an HMAC under a key Redis never holds) wherever the code only looks up a known id, and
every record a worker reads back is sealed: encrypted and authenticated with AES-GCM-SIV under
a service key, with its whole key name as associated data. A record cannot be forged, altered
or moved under another key name without the key: the reader refuses it and logs that it did.

The seal is deterministic (the nonce derives from the key name, and GCM-SIV stays safe when a
nonce repeats): the same record under the same name is the same bytes, so a rebuild gives back
the same Redis, byte for byte.
"""

from __future__ import annotations

import hashlib
import logging
import os
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from infrastructure.keys.crypto import KEY_BYTES, NONCE_BYTES, keyed_hash

log = logging.getLogger("fangxin.readmodels")

PSEUDONYM_BYTES = 16
# Pseudonyms remembered per process: venue and visitor ids recur on every check-in.
_REMEMBERED = 100_000


class Pseudonyms:
    """Keyed pseudonyms of ids, token hashes, phone indexes and dependents' names."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._known: dict[UUID, str] = {}

    @classmethod
    def fresh(cls) -> Pseudonyms:
        """Pseudonyms under a random key: for read models rebuilt at every start."""
        return cls(os.urandom(KEY_BYTES))

    def _of(self, kind: bytes, value: bytes) -> str:
        return keyed_hash(self._key, kind + value)[:PSEUDONYM_BYTES].hex()

    def of(self, ident: UUID) -> str:
        """The pseudonym of a visitor, visit, venue, merchant or agency id."""
        found = self._known.get(ident)
        if found is None:
            found = self._of(b"id\x00", ident.bytes)
            if len(self._known) >= _REMEMBERED:
                self._known.clear()
            self._known[ident] = found
        return found

    def token(self, token_hash: str) -> str:
        """The pseudonym of a token's hash."""
        return self._of(b"token\x00", token_hash.encode())

    def phone(self, phone_index: str) -> str:
        """The pseudonym of a phone's blind index."""
        return self._of(b"phone\x00", phone_index.encode())

    def name(self, visitor_id: UUID, name: str) -> str:
        """The pseudonym of a dependent's name, distinct for each visitor who registered it."""
        return self._of(b"name\x00" + visitor_id.bytes, name.encode())


class Seals:
    """Seals records under their key names; opening refuses anything altered or moved."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCMSIV(key)

    def seal(self, name: str, plain: bytes) -> bytes:
        """The record, encrypted and authenticated for this key name only."""
        where = name.encode()
        return self._aead.encrypt(_nonce(where), plain, where)

    def open(self, name: str, sealed: bytes, kind: str) -> bytes | None:
        """The record sealed under this name, or None (logged) when it is not authentic."""
        where = name.encode()
        try:
            return self._aead.decrypt(_nonce(where), sealed, where)
        except (InvalidTag, ValueError):
            refused(kind)
            return None


def refused(kind: str) -> None:
    """Log a record refused as not authentic: its kind only, never what it held."""
    # Someone wrote to Redis who does not hold the key (or a bug did): operators must know.
    log.warning("refused a %s record from Redis: its seal does not match", kind)


def _nonce(where: bytes) -> bytes:
    return hashlib.sha256(where).digest()[:NONCE_BYTES]
