"""One implementation of the audit log's operations; a dialect supplies connections and SQL.

The SQLite and PostgreSQL logs hold the same two tables and chain the same fields, so `append`,
`has`, `entries`, `head` and `verify` are written once here; each store says only how it opens
a write, a read and a consistent snapshot, and how its columns store a time and a case id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from uuid import UUID

from infrastructure.audit.chain import (
    AuditEntry,
    Verification,
    chain_mac,
    check_key,
    check_limit,
    last_link,
    micros,
    next_link,
    walk,
)
from infrastructure.audit.checkpoint import ChainHead

_HEAD = "SELECT position, mac FROM fangxin_audit_head WHERE id = 1"
_TAIL = "SELECT position, mac FROM fangxin_audit ORDER BY position DESC LIMIT 1"
_HAS = "SELECT 1 FROM fangxin_audit WHERE event_ref = ?"
_INSERT = "INSERT INTO fangxin_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_MOVE_HEAD = "UPDATE fangxin_audit_head SET position = ?, mac = ? WHERE id = 1"


class ChainedAuditLog(ABC):
    """The audit chain in two tables (`fangxin_audit` and its one-row head), store-neutral.

    SQL is written with `?` placeholders; a dialect whose driver wants another style says so
    in `placeholder`.
    """

    placeholder = "?"
    # What locks the head row for the rest of an append's transaction (if the store needs it).
    lock_head = ""

    def __init__(self, key: bytes) -> None:
        check_key(key)
        self._key = key

    # -- the dialect ----------------------------------------------------------------------

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """A connection in a transaction that serialises appends, committed on exit."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A connection for one read."""

    @abstractmethod
    def _snapshot(self) -> AbstractContextManager[Any]:
        """A connection in a read transaction, so the head and the entries agree."""

    @abstractmethod
    def _stored(self, fields: tuple[Any, ...]) -> tuple[Any, ...]:
        """The chained fields as the store's columns hold them."""

    @abstractmethod
    def _entries_query(
        self, start: datetime | None, end: datetime | None
    ) -> tuple[str, tuple[Any, ...]]:
        """The SELECT of entries with start <= at < end, ordered and limited by one more
        placeholder, and its parameters except the limit."""

    @abstractmethod
    def _entry(self, row: Sequence[Any]) -> AuditEntry:
        """An entry from a row of `_entries_query`."""

    @abstractmethod
    def _chain_rows(self, db: Any) -> Iterable[Sequence[object]]:
        """Every stored row in position order, in the form the MAC covers."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    # -- the operations -------------------------------------------------------------------

    def append(
        self,
        at: datetime,
        actor: str,
        action: str,
        case_id: UUID | None,
        subject: str | None,
        event_ref: str,
    ) -> bool:
        """Chain a new entry; False, writing nothing, when event_ref is recorded already."""
        at_us = micros(at)
        case = None if case_id is None else str(case_id)
        with self._write() as db:
            head = db.execute(_HEAD + self.lock_head).fetchone()
            # Checked inside the append's lock, so two appends of one event cannot both pass.
            if db.execute(self._sql(_HAS), (event_ref,)).fetchone():
                return False
            tail = db.execute(_TAIL).fetchone()
            position, prev_mac = next_link(head, tail)
            fields = (position, at_us, actor, action, case, subject, event_ref)
            mac = chain_mac(self._key, prev_mac, fields)
            db.execute(self._sql(_INSERT), (*self._stored(fields), prev_mac, mac))
            db.execute(self._sql(_MOVE_HEAD), (position, mac))
        return True

    def has(self, event_ref: str) -> bool:
        """Whether an entry records this event."""
        with self._read() as db:
            row = db.execute(self._sql(_HAS), (event_ref,)).fetchone()
        return row is not None

    def entries(
        self, start: datetime | None = None, end: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries with start <= at < end in chain order (oldest first), at most limit."""
        check_limit(limit)
        sql, params = self._entries_query(start, end)
        with self._read() as db:
            rows = db.execute(self._sql(sql), (*params, limit)).fetchall()
        return [self._entry(row) for row in rows]

    def head(self) -> ChainHead:
        """The last position and MAC; AuditChainError when the head and last entry disagree."""
        with self._snapshot() as db:
            head = db.execute(_HEAD).fetchone()
            tail = db.execute(_TAIL).fetchone()
        return last_link(head, tail)

    def verify(self, checkpoint: ChainHead | None = None) -> Verification:
        """Recompute every MAC and compare the head with the last entry, and the chain with a
        checkpoint taken earlier when one is given."""
        with self._snapshot() as db:
            head = db.execute(_HEAD).fetchone()
            return walk(self._key, self._chain_rows(db), head, checkpoint)
