"""The audit trail: an append-only record of who read or decided what, chained by keyed MACs.

Each entry's MAC is HMAC-SHA256 under the audit key over the MAC before it and the entry's own
fields (its position included), so editing, removing, reordering or inserting entries in the
database breaks the chain, and without the key nobody can compute a chain that verifies. A
one-row head (last position and MAC), written in the same transaction as each append, makes
entries cut off the end show too. No check inside the store can catch the entries and the head
rolled back together to an earlier state, or a trail rebuilt by someone holding the audit key;
that needs the head kept somewhere else as well: a signed checkpoint (`audit_checkpoint`).
"""

from __future__ import annotations

import hmac
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import msgspec
import psycopg
from psycopg_pool import ConnectionPool

from infrastructure.audit_checkpoint import ChainHead, CheckpointCheck, check_against
from infrastructure.crypto import KEY_BYTES, keyed_hash
from infrastructure.files import private_file

GENESIS_MAC = bytes(32)

# A version tag inside every MAC, so a future encoding can never verify as this one.
_ENCODING = "fangxin.audit.v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NO_END = 2**63 - 1
_NO_START = -(2**63)
# Serialises table creation between processes starting at once; any constant will do.
_PG_SCHEMA_LOCK = 0x66616E6778696E


class AuditEntry(msgspec.Struct, frozen=True):
    """One recorded access or decision, at its position in the chain."""

    position: int
    at: datetime
    actor: str
    action: str
    case_id: UUID | None
    subject: str | None
    event_ref: str


class Verification(msgspec.Struct, frozen=True):
    """The chain recomputed: whether it holds, how many entries, and where it first breaks;
    with a checkpoint, whether every entry up to it is still there unchanged."""

    valid: bool
    entries: int
    first_bad_position: int | None
    checkpoint: CheckpointCheck | None = None


class AuditChainError(Exception):
    """The store's head does not match its last entry, so nothing more can be chained on."""


class AuditLog(Protocol):
    """An append-only audit trail whose chain of MACs can be recomputed."""

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
        ...

    def has(self, event_ref: str) -> bool:
        """Whether an entry records this event."""
        ...

    def entries(
        self, start: datetime | None = None, end: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries with start <= at < end in chain order (oldest first), at most limit."""
        ...

    def head(self) -> ChainHead:
        """The last position and MAC; AuditChainError when the head and last entry disagree."""
        ...

    def verify(self, checkpoint: ChainHead | None = None) -> Verification:
        """Recompute every MAC and compare the head with the last entry, and the chain with a
        checkpoint taken earlier when one is given."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SQLiteAuditLog:
    """The audit chain in two SQLite tables, which may share a file with the event store."""

    def __init__(self, path: Path, key: bytes) -> None:
        _check_key(key)
        private_file(path)
        self._key = key
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
        at_us = _micros(at)
        case = None if case_id is None else str(case_id)
        with self._write() as db:
            if db.execute(
                "SELECT 1 FROM fangxin_audit WHERE event_ref = ?", (event_ref,)
            ).fetchone():
                return False
            head = db.execute("SELECT position, mac FROM fangxin_audit_head WHERE id = 1")
            head_row = head.fetchone()
            tail = db.execute(
                "SELECT position, mac FROM fangxin_audit ORDER BY position DESC LIMIT 1"
            ).fetchone()
            position, prev_mac = _next_link(head_row, tail)
            fields = (position, at_us, actor, action, case, subject, event_ref)
            mac = _mac(self._key, prev_mac, fields)
            db.execute(
                "INSERT INTO fangxin_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*fields, prev_mac, mac),
            )
            db.execute(
                "UPDATE fangxin_audit_head SET position = ?, mac = ? WHERE id = 1", (position, mac)
            )
        return True

    def has(self, event_ref: str) -> bool:
        """Whether an entry records this event."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM fangxin_audit WHERE event_ref = ?", (event_ref,)
            ).fetchone()
        return row is not None

    def entries(
        self, start: datetime | None = None, end: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries with start <= at < end in chain order (oldest first), at most limit."""
        _check_limit(limit)
        low = _NO_START if start is None else _micros(start)
        high = _NO_END if end is None else _micros(end)
        with self._lock:
            rows = self._db.execute(
                "SELECT position, at_us, actor, action, case_id, subject, event_ref"
                " FROM fangxin_audit WHERE at_us >= ? AND at_us < ? ORDER BY position LIMIT ?",
                (low, high, limit),
            ).fetchall()
        return [
            AuditEntry(
                position=position,
                at=_EPOCH + at_us * _MICROSECOND,
                actor=actor,
                action=action,
                case_id=None if case_id is None else UUID(case_id),
                subject=subject,
                event_ref=event_ref,
            )
            for position, at_us, actor, action, case_id, subject, event_ref in rows
        ]

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so the head and the entries come from the same state."""
        with self._lock:
            # Edited text may not be UTF-8; it must fail verification, not stop it.
            self._db.text_factory = _lenient_text
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("ROLLBACK")
                self._db.text_factory = str

    def head(self) -> ChainHead:
        """The last position and MAC; AuditChainError when the head and last entry disagree."""
        with self._snapshot() as db:
            head = db.execute("SELECT position, mac FROM fangxin_audit_head WHERE id = 1")
            head_row = head.fetchone()
            tail = db.execute(
                "SELECT position, mac FROM fangxin_audit ORDER BY position DESC LIMIT 1"
            ).fetchone()
        return _last_link(head_row, tail)

    def verify(self, checkpoint: ChainHead | None = None) -> Verification:
        """Recompute every MAC and compare the head with the last entry, and the chain with a
        checkpoint taken earlier when one is given."""
        with self._snapshot() as db:
            head = db.execute("SELECT position, mac FROM fangxin_audit_head WHERE id = 1")
            head_row = head.fetchone()
            rows = db.execute(
                "SELECT position, at_us, actor, action, case_id, subject, event_ref,"
                " prev_mac, mac FROM fangxin_audit ORDER BY position"
            )
            return _walk(self._key, rows, head_row, checkpoint)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


class PostgresAuditLog:
    """The audit chain in two PostgreSQL tables; appends queue on a lock of the head row."""

    def __init__(self, dsn: str, key: bytes, *, pool_size: int = 4) -> None:
        _check_key(key)
        self._key = key
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            open=True,
            name="fangxin-audit",
            check=ConnectionPool.check_connection,
        )
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS fangxin_audit ("
                    " position bigint PRIMARY KEY, at timestamptz NOT NULL,"
                    " actor text NOT NULL, action text NOT NULL, case_id uuid, subject text,"
                    " event_ref text NOT NULL UNIQUE, prev_mac bytea NOT NULL,"
                    " mac bytea NOT NULL)"
                )
                conn.execute("CREATE INDEX IF NOT EXISTS fangxin_audit_at ON fangxin_audit (at)")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS fangxin_audit_head ("
                    " id smallint PRIMARY KEY CHECK (id = 1),"
                    " position bigint NOT NULL, mac bytea NOT NULL)"
                )
                if conn.execute("SELECT 1 FROM fangxin_audit LIMIT 1").fetchone() is None:
                    conn.execute(
                        "INSERT INTO fangxin_audit_head VALUES (1, 0, %s)"
                        " ON CONFLICT (id) DO NOTHING",
                        (GENESIS_MAC,),
                    )
        except BaseException:
            self._pool.close()
            raise

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
        at_us = _micros(at)
        with self._pool.connection() as conn, conn.transaction():
            head = conn.execute(
                "SELECT position, mac FROM fangxin_audit_head WHERE id = 1 FOR UPDATE"
            ).fetchone()
            # Checked under the head lock, so two appends of one event cannot both pass.
            if conn.execute(
                "SELECT 1 FROM fangxin_audit WHERE event_ref = %s", (event_ref,)
            ).fetchone():
                return False
            tail = conn.execute(
                "SELECT position, mac FROM fangxin_audit ORDER BY position DESC LIMIT 1"
            ).fetchone()
            position, prev_mac = _next_link(head, tail)
            case = None if case_id is None else str(case_id)
            fields = (position, at_us, actor, action, case, subject, event_ref)
            mac = _mac(self._key, prev_mac, fields)
            stored_at = _EPOCH + at_us * _MICROSECOND
            conn.execute(
                "INSERT INTO fangxin_audit VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (position, stored_at, actor, action, case_id, subject, event_ref, prev_mac, mac),
            )
            conn.execute(
                "UPDATE fangxin_audit_head SET position = %s, mac = %s WHERE id = 1",
                (position, mac),
            )
        return True

    def has(self, event_ref: str) -> bool:
        """Whether an entry records this event."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM fangxin_audit WHERE event_ref = %s", (event_ref,)
            ).fetchone()
        return row is not None

    def entries(
        self, start: datetime | None = None, end: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries with start <= at < end in chain order (oldest first), at most limit."""
        _check_limit(limit)
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT position, at, actor, action, case_id, subject, event_ref"
                " FROM fangxin_audit"
                " WHERE at >= coalesce(%s::timestamptz, '-infinity')"
                " AND at < coalesce(%s::timestamptz, 'infinity')"
                " ORDER BY position LIMIT %s",
                (_utc(start), _utc(end), limit),
            ).fetchall()
        return [
            AuditEntry(
                position=position,
                at=at.astimezone(UTC),
                actor=actor,
                action=action,
                case_id=case_id,
                subject=subject,
                event_ref=event_ref,
            )
            for position, at, actor, action, case_id, subject, event_ref in rows
        ]

    def head(self) -> ChainHead:
        """The last position and MAC; AuditChainError when the head and last entry disagree."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            head = conn.execute(
                "SELECT position, mac FROM fangxin_audit_head WHERE id = 1"
            ).fetchone()
            tail = conn.execute(
                "SELECT position, mac FROM fangxin_audit ORDER BY position DESC LIMIT 1"
            ).fetchone()
        return _last_link(head, tail)

    def verify(self, checkpoint: ChainHead | None = None) -> Verification:
        """Recompute every MAC and compare the head with the last entry, and the chain with a
        checkpoint taken earlier when one is given."""
        with self._pool.connection() as conn, conn.transaction():
            # One snapshot for the head and all entries, however long the walk takes.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            head = conn.execute(
                "SELECT position, mac FROM fangxin_audit_head WHERE id = 1"
            ).fetchone()
            with conn.cursor(name="fangxin_audit_verify") as cursor:
                cursor.itersize = 2000
                cursor.execute(
                    "SELECT position, at, actor, action, case_id, subject, event_ref,"
                    " prev_mac, mac FROM fangxin_audit ORDER BY position"
                )
                return _walk(self._key, (_stored_fields(row) for row in cursor), head, checkpoint)

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"the audit key must be {KEY_BYTES} bytes")


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")


def _micros(at: datetime) -> int:
    if at.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware")
    return (at - _EPOCH) // _MICROSECOND


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else _EPOCH + _micros(at) * _MICROSECOND


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _stored_fields(row: Sequence[Any]) -> tuple[object, ...]:
    """A PostgreSQL row in the form the MAC covers: time in microseconds, case id as text."""
    position, at, actor, action, case_id, subject, event_ref, prev_mac, mac = row
    at_us = _micros(at) if isinstance(at, datetime) else at
    case = str(case_id) if isinstance(case_id, UUID) else case_id
    return (position, at_us, actor, action, case, subject, event_ref, prev_mac, mac)


def _mac(key: bytes, prev_mac: bytes, fields: Sequence[object]) -> bytes:
    # A JSON array of ints, strings and nulls is one unambiguous byte string per entry.
    return keyed_hash(key, prev_mac + msgspec.json.encode([_ENCODING, *fields]))


def _next_link(head: Sequence[Any] | None, tail: Sequence[Any] | None) -> tuple[int, bytes]:
    """The next position and the MAC to chain from, refusing a head that disagrees with the tail."""
    last = _last_link(head, tail)
    return last.entries + 1, last.mac


def _last_link(head: Sequence[Any] | None, tail: Sequence[Any] | None) -> ChainHead:
    """The last position and MAC, refusing a head that disagrees with the tail."""
    position, mac = (0, GENESIS_MAC) if tail is None else (tail[0], tail[1])
    if head is None or tuple(head) != (position, mac):
        raise AuditChainError("the audit head does not match the last entry; verify the chain")
    if type(position) is not int or not isinstance(mac, bytes):
        raise AuditChainError("the last audit entry is malformed; verify the chain")
    return ChainHead(entries=position, mac=mac)


def _well_typed(fields: Sequence[object]) -> bool:
    """Whether stored values have their column's type; a blob or number in a text column fails."""
    position, at_us, actor, action, case_id, subject, event_ref, prev_mac, mac = fields
    return (
        type(position) is int
        and type(at_us) is int
        and type(actor) is str
        and type(action) is str
        and (case_id is None or type(case_id) is str)
        and (subject is None or type(subject) is str)
        and type(event_ref) is str
        and type(prev_mac) is bytes
        and type(mac) is bytes
    )


def _walk(
    key: bytes,
    rows: Iterable[Sequence[object]],
    head: Sequence[object] | None,
    checkpoint: ChainHead | None = None,
) -> Verification:
    """Recompute the chain over rows in position order, then check the head against its end,
    and the MAC at the checkpoint's position against the checkpoint's."""
    prev = GENESIS_MAC
    expected = 1
    count = 0
    bad: int | None = None
    upto = None if checkpoint is None else checkpoint.entries
    # The MAC the chain recomputes at the checkpoint's position; None unless it gets there.
    mac_at_checkpoint = GENESIS_MAC if upto == 0 else None
    for row in rows:
        count += 1
        if bad is not None:
            continue
        position = row[0]
        if position != expected:
            # A gap points at the first missing position; a too-small one at itself.
            bad = min(position, expected) if isinstance(position, int) else expected
            continue
        if not _well_typed(row):
            bad = expected
            continue
        try:
            mac = _mac(key, prev, row[:7])
        except (msgspec.EncodeError, UnicodeEncodeError):
            bad = expected
            continue
        stored_prev, stored_mac = row[7], row[8]
        if (
            stored_prev != prev
            or not isinstance(stored_mac, bytes)
            or not hmac.compare_digest(mac, stored_mac)
        ):
            bad = expected
            continue
        if expected == upto:
            mac_at_checkpoint = mac
        prev = mac
        expected += 1
    if bad is None:
        bad = _head_mismatch(head, expected - 1, prev)
    # The head row says nothing about entries up to the checkpoint: their MACs alone do.
    against = None if checkpoint is None else check_against(checkpoint, count, mac_at_checkpoint)
    return Verification(
        valid=bad is None, entries=count, first_bad_position=bad, checkpoint=against
    )


def _head_mismatch(head: Sequence[object] | None, last: int, last_mac: bytes) -> int | None:
    """Where the chain breaks if the head disagrees with its end; None if it agrees."""
    if head is None or type(head[0]) is not int:
        return last + 1
    head_position = head[0]
    if head_position != last:
        # Entries cut off the end (or a head moved back): the first position that differs.
        return min(head_position, last) + 1
    if not isinstance(head[1], bytes) or not hmac.compare_digest(head[1], last_mac):
        return max(last, 1)
    return None
