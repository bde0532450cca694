"""Data keys, wrapped by the master key; destroying a key shreds the data it encrypts.

Keys have scopes: `visitor:<id>` (personal data and visits of one visitor), `day:<date>`
(visits of one UTC day), `system` (the rest), plus a few named service keys. A key's id is a
keyed hash of its scope, so the store never shows which visitor or day a key belongs to.
A destroyed key leaves a tombstone so that nothing can be encrypted under its scope again, and
so that data naming it reads as erased; an id the store never had, tombstone or key, means the
data naming it was altered, and is an error. The backends keep nothing of a destroyed key's
wrapping in their files (SQLite overwrites it, PostgreSQL rewrites the part of the table that
held it); copies made before (a WAL, a backup) die with the master key version that wrapped
it (`rotate_master`, then the version is retired).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Protocol
from uuid import UUID

from domain.errors import GoneError
from infrastructure.keys.crypto import KEY_BYTES, keyed_hash, seal, unseal
from infrastructure.keys.masterkeys import MasterKeys
from infrastructure.keys.sqlite import SQLiteKeyBackend

# Importable from here as before the backends and the master key had modules of their own.
__all__ = [
    "KEY_ID_BYTES",
    "KeyBackend",
    "KeyDestroyedError",
    "KeyStore",
    "MasterKeys",
    "SQLiteKeyBackend",
    "UnknownKeyError",
]

KEY_ID_BYTES = 16
RETENTION_LOOKBACK_DAYS = 3660


class KeyDestroyedError(GoneError):
    """Data was to be encrypted under a key that was destroyed (an erased visitor, an old day)."""

    kind = "data-erased"


class UnknownKeyError(LookupError):
    """A key id the key store never had: what names it was altered (erasure leaves a tombstone)."""


class KeyBackend(Protocol):
    """Where wrapped keys live: SQLite in the data folder, or PostgreSQL."""

    def insert_if_absent(self, key_id: bytes, wrapped: bytes, master_version: int) -> None:
        """Store a new wrapped key unless that id exists (then keep the existing one)."""
        ...

    def get(self, key_id: bytes) -> tuple[bytes | None, int] | None:
        """(wrapped or None when destroyed, master version), or None when unknown."""
        ...

    def get_many(self, key_ids: Sequence[bytes]) -> dict[bytes, tuple[bytes | None, int]]:
        """`get` of several keys in one read; unknown ids are left out."""
        ...

    def destroy(self, key_ids: Iterable[bytes]) -> int:
        """Replace keys by tombstones (also for ids never used); returns how many held a key."""
        ...

    def compact(self) -> int:
        """Remove what destroyed keys left in the store's files (off the request path);
        returns how many parts of the store were rewritten."""
        ...

    def stale(self, current: int, after: bytes, limit: int) -> list[tuple[bytes, bytes, int]]:
        """Up to `limit` live keys not wrapped under version `current`, in id order from
        after `after`: (id, wrapped, master version)."""
        ...

    def rewrap_many(self, rows: Sequence[tuple[bytes, bytes, int, int]]) -> int:
        """(id, wrapped, version, previous version): each live key still wrapped under its
        previous version takes the new wrapping, in one transaction; a key destroyed
        meanwhile stays destroyed. Returns how many were rewrapped."""
        ...

    def versions(self) -> dict[int, int]:
        """How many live keys each master key version wraps."""
        ...

    def get_setting(self, name: str) -> str | None:
        """A small named value kept with the keys."""
        ...

    def set_setting(self, name: str, value: str) -> None:
        """Keep a small named value."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


ID_CACHE_LIMIT = 100_000
# How long a key store that follows a master key file wraps under the version it last read.
FOLLOW_SECONDS = 1.0
ROTATION_BATCH = 500


class KeyStore:
    """Scoped data keys: made on first use, cached unwrapped in memory, destroyable.

    `follow`, when given, reads the master key versions again (the embedded deployment's
    `master.key`): new keys are wrapped under its current version within `FOLLOW_SECONDS` of a
    change, and a key under a version this store does not know yet is unwrapped after reading.
    """

    def __init__(
        self,
        backend: KeyBackend,
        master: MasterKeys,
        follow: Callable[[], MasterKeys] | None = None,
    ) -> None:
        self.backend = backend
        self._backend = backend
        self._master = master
        self._follow = follow
        self._followed_at = time.monotonic()
        self._lock = threading.Lock()
        self._cache: dict[bytes, bytes | None] = {}
        self._ids: dict[str, bytes] = {}
        self.on_destroy: list[Callable[[list[bytes]], None]] = []
        self._naming_key = self.service_key("naming")

    # Service keys have fixed ids: they name the others, so they cannot be named by them.
    def service_key(self, name: str) -> bytes:
        """A named long-lived key (blind index, venue codes, key naming)."""
        key_id = hashlib.sha256(f"fangxin-service-key:{name}".encode()).digest()[:KEY_ID_BYTES]
        key = self._get_or_create(key_id)
        if key is None:
            raise KeyDestroyedError(f"the service key {name!r} was destroyed")
        return key

    def key_id(self, scope: str) -> bytes:
        """The opaque id of a scope's key (a scope's id never changes, so it is remembered)."""
        key_id = self._ids.get(scope)
        if key_id is None:
            key_id = keyed_hash(self._naming_key, scope.encode())[:KEY_ID_BYTES]
            if len(self._ids) >= ID_CACHE_LIMIT:
                self._ids.clear()
            self._ids[scope] = key_id
        return key_id

    def key_for(self, scope: str) -> tuple[bytes, bytes]:
        """(id, key) of a scope, made on first use; refuses a destroyed scope."""
        key_id = self.key_id(scope)
        key = self._get_or_create(key_id)
        if key is None:
            raise KeyDestroyedError("this data was erased and cannot be written again")
        return key_id, key

    def in_memory(self, scope: str) -> bool:
        """Whether `key_for(scope)` would answer from memory (a destroyed key counts: it
        is refused at once), with no read or write of the key store."""
        return self.key_id(scope) in self._cache

    def load(self, scopes: Iterable[str]) -> None:
        """Bring the stored keys of these scopes into memory in one read (a group commit
        asks for its batch's keys at once instead of one round trip each). A scope with no
        key yet is left to `key_for`, which makes it."""
        key_ids = dict.fromkeys(map(self.key_id, scopes))
        if all(key_id in self._cache for key_id in key_ids):
            return
        # Read and cached under the lock, as `forget_all` and `forget` clear under it: a key
        # read before a destruction is never cached after the cache was told of it.
        with self._lock:
            missing = [key_id for key_id in key_ids if key_id not in self._cache]
            rows = self._backend.get_many(missing) if missing else {}
            for key_id, row in rows.items():
                self._cache[key_id] = self._key_of(key_id, row)

    def key_by_id(self, key_id: bytes) -> bytes | None:
        """A key by id, or None when it was destroyed (its tombstone says so); raises
        `UnknownKeyError` for an id the store never had, which is never cached."""
        if key_id in self._cache:
            return self._cache[key_id]
        with self._lock:  # see `load`
            if key_id not in self._cache:
                row = self._backend.get(key_id)
                if row is None:
                    raise UnknownKeyError(f"the key store never had the key {key_id.hex()}")
                self._cache[key_id] = self._key_of(key_id, row)
            return self._cache[key_id]

    def _key_of(self, key_id: bytes, row: tuple[bytes | None, int]) -> bytes | None:
        """The key a backend row holds; None for a tombstone."""
        return None if row[0] is None else self._unwrap(key_id, row[0], row[1])

    def _get_or_create(self, key_id: bytes) -> bytes | None:
        cached = self._cache.get(key_id, b"")
        if cached != b"":
            return cached
        with self._lock:
            row = self._backend.get(key_id)
            if row is None:
                wrapped, version = self._wrap(key_id, secrets.token_bytes(KEY_BYTES))
                self._backend.insert_if_absent(key_id, wrapped, version)
                row = self._backend.get(key_id)
                assert row is not None
            key_or_none = self._key_of(key_id, row)
            self._cache[key_id] = key_or_none
            return key_or_none

    def _current_master(self) -> MasterKeys:
        if self._follow is not None and time.monotonic() - self._followed_at >= FOLLOW_SECONDS:
            self._read_master()
        return self._master

    def _read_master(self) -> None:
        assert self._follow is not None
        self._master = self._follow()
        self._followed_at = time.monotonic()

    def _wrap(self, key_id: bytes, key: bytes) -> tuple[bytes, int]:
        master = self._current_master()
        version = master.current
        return seal(master.keys[version], key, _wrap_context(key_id, version)), version

    def _unwrap(self, key_id: bytes, wrapped: bytes, version: int) -> bytes:
        master = self._master.keys.get(version)
        if master is None and self._follow is not None:
            self._read_master()
            master = self._master.keys.get(version)
        if master is None:
            raise RuntimeError(f"master key version {version} is not configured")
        return unseal(master, wrapped, _wrap_context(key_id, version))

    def destroy(self, scopes: Iterable[str]) -> int:
        """Shred scopes for good; returns how many keys existed."""
        ids = [self.key_id(scope) for scope in scopes]
        destroyed = self._backend.destroy(ids)
        self.forget(ids)
        for listener in self.on_destroy:
            listener(ids)
        return destroyed

    def forget_all(self) -> None:
        """Drop every cached key: the next use reads it again, or learns it was destroyed."""
        with self._lock:
            self._cache.clear()

    def forget(self, key_ids: list[bytes]) -> None:
        """Drop cached keys that another process destroyed."""
        with self._lock:
            for key_id in key_ids:
                self._cache[key_id] = None

    def destroy_visitor(self, visitor_id: UUID) -> None:
        """Shred a visitor's personal data and visits."""
        self.destroy([f"visitor:{visitor_id}"])

    def destroy_days_before(self, day: date) -> int:
        """Shred the day keys of every day before `day`."""
        watermark = self._backend.get_setting("retention_watermark")
        first = (
            date.fromisoformat(watermark)
            if watermark
            else day - timedelta(days=RETENTION_LOOKBACK_DAYS)
        )
        days = [first + timedelta(days=i) for i in range((day - first).days)]
        destroyed = self.destroy(f"day:{d.isoformat()}" for d in days) if days else 0
        if not watermark or day > first:
            self._backend.set_setting("retention_watermark", day.isoformat())
        return destroyed

    @property
    def master(self) -> MasterKeys:
        """The master key versions in force (the current one wraps new keys)."""
        return self._current_master()

    def versions(self) -> dict[int, int]:
        """How many live keys each master key version wraps."""
        return self._backend.versions()

    def rotate_master(
        self, progress: Callable[[int, int], None] | None = None, batch: int = ROTATION_BATCH
    ) -> int:
        """Rewrap every live key under the current master key version; the log is untouched.

        One transaction per batch, in key id order: stopped halfway, a rerun continues, as it
        looks only at keys still under older versions. A key destroyed meanwhile stays
        destroyed (a rewrap applies only to a live key still under the version it was read
        under). `progress(done, total)` follows it. Returns how many keys were rewrapped.
        """
        current = self._current_master().current
        total = sum(n for version, n in self._backend.versions().items() if version != current)
        done, after = 0, b""
        while rows := self._backend.stale(current, after, batch):
            rewrapped = []
            for key_id, wrapped, version in rows:
                new, new_version = self._wrap(key_id, self._unwrap(key_id, wrapped, version))
                if new_version != current:
                    raise RuntimeError("the current master key version changed; rotate again")
                rewrapped.append((key_id, new, current, version))
            done += self._backend.rewrap_many(rewrapped)
            after = rows[-1][0]
            if progress is not None:
                progress(done, max(total, done))
        return done

    def close(self) -> None:
        """Release the backend."""
        self._backend.close()


def _wrap_context(key_id: bytes, version: int) -> bytes:
    return b"fangxin-wrapped-key|" + key_id + version.to_bytes(4, "big")
