"""Data keys, wrapped by the master key; destroying a key shreds the data it encrypts.

Keys have scopes: `visitor:<id>` (personal data and visits of one visitor), `day:<date>`
(visits of one UTC day), `system` (the rest), plus a few named service keys. A key's id is a
keyed hash of its scope, so the store never shows which visitor or day a key belongs to.
A destroyed key leaves a tombstone so that nothing can be encrypted under its scope again, and
so that data naming it reads as erased; an id the store never had, tombstone or key, means the
data naming it was altered, and is an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol
from uuid import UUID

from domain.errors import GoneError
from infrastructure.crypto import KEY_BYTES, keyed_hash, seal, unseal

KEY_ID_BYTES = 16
RETENTION_LOOKBACK_DAYS = 3660


class KeyDestroyedError(GoneError):
    """Data was to be encrypted under a key that was destroyed (an erased visitor, an old day)."""

    kind = "data-erased"


class UnknownKeyError(LookupError):
    """A key id the key store never had: what names it was altered (erasure leaves a tombstone)."""


class MasterKeys:
    """The master key versions; the first is current, older ones unwrap older data keys."""

    def __init__(self, keys: dict[int, bytes], current: int) -> None:
        if current not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
            raise ValueError("master keys must be 32 bytes, and the current one among them")
        self.keys = keys
        self.current = current

    @classmethod
    def parse(cls, text: str) -> MasterKeys:
        """`BASE64` (version 1) or `VERSION:BASE64,VERSION:BASE64,...` (first is current)."""
        keys: dict[int, bytes] = {}
        order: list[int] = []
        for raw in text.replace("\n", ",").split(","):
            part = raw.strip()
            if not part:
                continue
            version_text, _, key_text = part.rpartition(":")
            version = int(version_text) if version_text else 1
            try:
                keys[version] = base64.b64decode(key_text, validate=True)
            except binascii.Error:
                raise ValueError("a master key is not valid base64") from None
            order.append(version)
        if not order:
            raise ValueError("no master key given")
        return cls(keys, order[0])

    def render(self) -> str:
        """The text form `parse` reads."""
        versions = [
            self.current,
            *sorted((v for v in self.keys if v != self.current), reverse=True),
        ]
        return ",".join(f"{v}:{base64.b64encode(self.keys[v]).decode()}" for v in versions)

    @staticmethod
    def load_or_create(configured: str, data_dir: Path) -> MasterKeys:
        """The configured master key, or the data folder's own (made at first start, mode 0600)."""
        if configured:
            return MasterKeys.parse(configured)
        path = data_dir / "master.key"
        if path.exists():
            return MasterKeys.parse(path.read_text())
        data_dir.mkdir(parents=True, exist_ok=True)
        keys = MasterKeys({1: secrets.token_bytes(KEY_BYTES)}, 1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(keys.render() + "\n")
        return keys


class KeyRow(Protocol):
    """What a backend stores of one key."""

    wrapped: bytes | None
    master_version: int


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

    def rows(self) -> list[tuple[bytes, bytes, int]]:
        """Every live key: (id, wrapped, master version)."""
        ...

    def rewrap(self, key_id: bytes, wrapped: bytes, master_version: int) -> None:
        """Replace the wrapping of a live key."""
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


class SQLiteKeyBackend:
    """Keys in their own SQLite file, with secure_delete so shredded keys are overwritten."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A key must be on disk before any event encrypted with it is acknowledged; a
        # destroyed key must not linger in a journal or in free pages.
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS fangxin_keys ("
            " key_id BLOB PRIMARY KEY, wrapped BLOB, master_version INTEGER NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS fangxin_key_settings (name TEXT PRIMARY KEY, value TEXT)"
        )
        os.chmod(path, 0o600)

    def insert_if_absent(self, key_id: bytes, wrapped: bytes, master_version: int) -> None:
        """Store a new wrapped key unless the id exists."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO fangxin_keys VALUES (?, ?, ?)",
                (key_id, wrapped, master_version),
            )

    def get(self, key_id: bytes) -> tuple[bytes | None, int] | None:
        """One key."""
        with self._lock:
            row = self._db.execute(
                "SELECT wrapped, master_version FROM fangxin_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def get_many(self, key_ids: Sequence[bytes]) -> dict[bytes, tuple[bytes | None, int]]:
        """Several keys; unknown ids are left out (in-process: one indexed read each)."""
        found: dict[bytes, tuple[bytes | None, int]] = {}
        for key_id in key_ids:
            row = self.get(key_id)
            if row is not None:
                found[key_id] = row
        return found

    def destroy(self, key_ids: Iterable[bytes]) -> int:
        """Tombstone keys."""
        ids = list(key_ids)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                live = 0
                for key_id in ids:
                    live += self._db.execute(
                        "UPDATE fangxin_keys SET wrapped = NULL"
                        " WHERE key_id = ? AND wrapped IS NOT NULL",
                        (key_id,),
                    ).rowcount
                    self._db.execute(
                        "INSERT OR IGNORE INTO fangxin_keys VALUES (?, NULL, 0)", (key_id,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return live

    def rows(self) -> list[tuple[bytes, bytes, int]]:
        """Live keys."""
        with self._lock:
            return [
                (r[0], r[1], r[2])
                for r in self._db.execute(
                    "SELECT key_id, wrapped, master_version FROM fangxin_keys"
                    " WHERE wrapped IS NOT NULL"
                )
            ]

    def rewrap(self, key_id: bytes, wrapped: bytes, master_version: int) -> None:
        """Replace a key's wrapping."""
        with self._lock:
            self._db.execute(
                "UPDATE fangxin_keys SET wrapped = ?, master_version = ?"
                " WHERE key_id = ? AND wrapped IS NOT NULL",
                (wrapped, master_version, key_id),
            )

    def get_setting(self, name: str) -> str | None:
        """A named value."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM fangxin_key_settings WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, name: str, value: str) -> None:
        """Keep a named value."""
        with self._lock:
            self._db.execute(
                "INSERT INTO fangxin_key_settings VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


ID_CACHE_LIMIT = 100_000


class KeyStore:
    """Scoped data keys: made on first use, cached unwrapped in memory, destroyable."""

    def __init__(self, backend: KeyBackend, master: MasterKeys) -> None:
        self.backend = backend
        self._backend = backend
        self._master = master
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
                key = secrets.token_bytes(KEY_BYTES)
                self._backend.insert_if_absent(
                    key_id, self._wrap(key_id, key), self._master.current
                )
                row = self._backend.get(key_id)
                assert row is not None
            key_or_none = self._key_of(key_id, row)
            self._cache[key_id] = key_or_none
            return key_or_none

    def _wrap(self, key_id: bytes, key: bytes) -> bytes:
        version = self._master.current
        return seal(self._master.keys[version], key, _wrap_context(key_id, version))

    def _unwrap(self, key_id: bytes, wrapped: bytes, version: int) -> bytes:
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

    def rotate_master(self, master: MasterKeys) -> int:
        """Rewrap every live key under the new current master key; the log is untouched."""
        old = self._master
        self._master = MasterKeys({**old.keys, **master.keys}, master.current)
        rewrapped = 0
        for key_id, wrapped, version in self._backend.rows():
            if version == master.current:
                continue
            key = self._unwrap(key_id, wrapped, version)
            self._backend.rewrap(key_id, self._wrap(key_id, key), master.current)
            rewrapped += 1
        return rewrapped

    def close(self) -> None:
        """Release the backend."""
        self._backend.close()


def _wrap_context(key_id: bytes, version: int) -> bytes:
    return b"fangxin-wrapped-key|" + key_id + version.to_bytes(4, "big")
