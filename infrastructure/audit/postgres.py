"""The audit chain in PostgreSQL (the production deployment); appends queue on the head row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from infrastructure.audit.chain import (
    EPOCH,
    GENESIS_MAC,
    MICROSECOND,
    AuditEntry,
    stored_fields,
    utc,
)
from infrastructure.audit.log import ChainedAuditLog

# Serialises table creation between processes starting at once; any constant will do.
_PG_SCHEMA_LOCK = 0x66616E6778696E

_Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresAuditLog(ChainedAuditLog):
    """Times as timestamptz and case ids as uuid, in a small connection pool."""

    placeholder = "%s"
    lock_head = " FOR UPDATE"

    def __init__(self, dsn: str, key: bytes, *, pool_size: int = 4) -> None:
        super().__init__(key)
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
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

    @contextmanager
    def _write(self) -> Iterator[_Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[_Connection]:
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[_Connection]:
        with self._pool.connection() as conn, conn.transaction():
            # One snapshot for the head and all entries, however long the walk takes.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def _stored(self, fields: tuple[Any, ...]) -> tuple[Any, ...]:
        position, at_us, actor, action, case, subject, event_ref = fields
        case_id = None if case is None else UUID(case)
        return (position, EPOCH + at_us * MICROSECOND, actor, action, case_id, subject, event_ref)

    def _entries_query(
        self, start: datetime | None, end: datetime | None
    ) -> tuple[str, tuple[Any, ...]]:
        return (
            "SELECT position, at, actor, action, case_id, subject, event_ref"
            " FROM fangxin_audit"
            " WHERE at >= coalesce(?::timestamptz, '-infinity')"
            " AND at < coalesce(?::timestamptz, 'infinity')"
            " ORDER BY position LIMIT ?",
            (utc(start), utc(end)),
        )

    def _entry(self, row: Sequence[Any]) -> AuditEntry:
        position, at, actor, action, case_id, subject, event_ref = row
        return AuditEntry(
            position=position,
            at=at.astimezone(UTC),
            actor=actor,
            action=action,
            case_id=case_id,
            subject=subject,
            event_ref=event_ref,
        )

    def _chain_rows(self, db: _Connection) -> Iterator[Sequence[object]]:
        with db.cursor(name="fangxin_audit_verify") as cursor:
            cursor.itersize = 2000
            cursor.execute(
                "SELECT position, at, actor, action, case_id, subject, event_ref,"
                " prev_mac, mac FROM fangxin_audit ORDER BY position"
            )
            for row in cursor:
                yield stored_fields(row)

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()
