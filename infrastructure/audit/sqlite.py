"""The audit chain in SQLite (the embedded deployment), which may share the event store's file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from infrastructure.audit.chain import (
    EPOCH,
    GENESIS_MAC,
    MICROSECOND,
    NO_END,
    NO_START,
    AuditEntry,
    lenient_text,
    micros,
)
from infrastructure.audit.log import ChainedAuditLog
from infrastructure.files import private_file


class SQLiteAuditLog(ChainedAuditLog):
    """Times as microseconds since the epoch and case ids as text; one connection, one lock."""

    def __init__(self, path: Path, key: bytes) -> None:
        super().__init__(key)
        private_file(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        try:
            # The file may belong to the event store, whose own settings stay as they are.
            if str(self._db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                self._db.execute("PRAGMA journal_mode=WAL")
            # An acknowledged access must still be in the trail after a power cut.
            self._db.execute("PRAGMA synchronous=FULL")
            with self._write() as db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS fangxin_audit ("
                    " position INTEGER PRIMARY KEY, at_us INTEGER NOT NULL,"
                    " actor TEXT NOT NULL, action TEXT NOT NULL, case_id TEXT, subject TEXT,"
                    " event_ref TEXT NOT NULL UNIQUE, prev_mac BLOB NOT NULL, mac BLOB NOT NULL)"
                )
                db.execute("CREATE INDEX IF NOT EXISTS fangxin_audit_at ON fangxin_audit (at_us)")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS fangxin_audit_head ("
                    " id INTEGER PRIMARY KEY CHECK (id = 1),"
                    " position INTEGER NOT NULL, mac BLOB NOT NULL)"
                )
                if db.execute("SELECT 1 FROM fangxin_audit LIMIT 1").fetchone() is None:
                    db.execute(
                        "INSERT OR IGNORE INTO fangxin_audit_head VALUES (1, 0, ?)", (GENESIS_MAC,)
                    )
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # IMMEDIATE takes the write lock first, so other processes' appends queue up.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # Edited text may not be UTF-8; it must fail verification, not stop it.
            self._db.text_factory = lenient_text
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("ROLLBACK")
                self._db.text_factory = str

    def _stored(self, fields: tuple[Any, ...]) -> tuple[Any, ...]:
        return fields

    def _entries_query(
        self, start: datetime | None, end: datetime | None
    ) -> tuple[str, tuple[Any, ...]]:
        low = NO_START if start is None else micros(start)
        high = NO_END if end is None else micros(end)
        return (
            "SELECT position, at_us, actor, action, case_id, subject, event_ref"
            " FROM fangxin_audit WHERE at_us >= ? AND at_us < ? ORDER BY position LIMIT ?",
            (low, high),
        )

    def _entry(self, row: Sequence[Any]) -> AuditEntry:
        position, at_us, actor, action, case_id, subject, event_ref = row
        return AuditEntry(
            position=position,
            at=EPOCH + at_us * MICROSECOND,
            actor=actor,
            action=action,
            case_id=None if case_id is None else UUID(case_id),
            subject=subject,
            event_ref=event_ref,
        )

    def _chain_rows(self, db: sqlite3.Connection) -> Iterable[Sequence[object]]:
        return db.execute(
            "SELECT position, at_us, actor, action, case_id, subject, event_ref,"
            " prev_mac, mac FROM fangxin_audit ORDER BY position"
        )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
