"""Wrapped data keys in their own SQLite file, for the embedded deployment.

A destroyed key's row keeps its id with no wrapping (its tombstone). `secure_delete` makes
SQLite overwrite the wrapping in the file as it is removed, and the rollback journal that held
it for the transaction is deleted at commit: nothing of the key stays in the data folder.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path


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
        """Tombstone keys (secure_delete overwrites their wrapping in the file)."""
        ids = list(key_ids)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                live = 0
                for key_id in ids:
                    live += self._db.execute(
                        "UPDATE fangxin_keys SET wrapped = NULL, master_version = 0"
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

    def compact(self) -> int:
        """Nothing to do: secure_delete overwrote each destroyed key when it went."""
        return 0

    def stale(self, current: int, after: bytes, limit: int) -> list[tuple[bytes, bytes, int]]:
        """Live keys not wrapped under `current`, by id, from after `after`."""
        with self._lock:
            return [
                (r[0], r[1], r[2])
                for r in self._db.execute(
                    "SELECT key_id, wrapped, master_version FROM fangxin_keys"
                    " WHERE wrapped IS NOT NULL AND master_version <> ? AND key_id > ?"
                    " ORDER BY key_id LIMIT ?",
                    (current, after, limit),
                )
            ]

    def rewrap_many(self, rows: Sequence[tuple[bytes, bytes, int, int]]) -> int:
        """(id, wrapped, version, previous version): each live key still under its previous
        version takes its new wrapping; a key destroyed meanwhile stays destroyed."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = 0
                for key_id, wrapped, version, previous in rows:
                    done += self._db.execute(
                        "UPDATE fangxin_keys SET wrapped = ?, master_version = ?"
                        " WHERE key_id = ? AND master_version = ? AND wrapped IS NOT NULL",
                        (wrapped, version, key_id, previous),
                    ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return done

    def versions(self) -> dict[int, int]:
        """How many live keys each master key version wraps."""
        with self._lock:
            rows = self._db.execute(
                "SELECT master_version, count(*) FROM fangxin_keys"
                " WHERE wrapped IS NOT NULL GROUP BY master_version"
            ).fetchall()
        return {version: count for version, count in rows}

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
