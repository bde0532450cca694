"""Wrapped data keys in PostgreSQL, for deployments with several workers on several machines.

The same two tables as the SQLite backend. Every call is one short autocommitted transaction
on a small pool; nothing is cached here (the KeyStore caches unwrapped keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

# One lock for all of Fangxin's DDL (the audit tables use it too): workers start at once, and
# concurrent CREATE TABLE IF NOT EXISTS of one table can fail on the catalog's unique index.
_PG_SCHEMA_LOCK = 0x66616E6778696E

_Connection = psycopg.Connection[tuple[Any, ...]]


def _create_tables(conn: _Connection) -> None:
    # Checked first so that workers without DDL rights start once `fangxin migrate` ran:
    # CREATE TABLE IF NOT EXISTS needs the CREATE privilege even when the table exists.
    row = conn.execute(
        "SELECT to_regclass('fangxin_keys') IS NOT NULL"
        " AND to_regclass('fangxin_key_settings') IS NOT NULL"
    ).fetchone()
    if row is not None and row[0]:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS fangxin_keys ("
            " key_id bytea PRIMARY KEY, wrapped bytea NULL, master_version int NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS fangxin_key_settings (name text PRIMARY KEY, value text)"
        )


def _configure(conn: _Connection) -> None:
    # A key must be durable before data encrypted with it is acknowledged: a server or
    # database default of synchronous_commit=off must not apply to these connections.
    conn.execute("SET synchronous_commit TO on")


def ensure_schema(dsn: str) -> None:
    """Create the key tables (in the DSN's search_path) unless they exist; for `fangxin migrate`."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        _create_tables(conn)


class PostgresKeyBackend:
    """Keys in PostgreSQL; a destroyed key's row keeps its id with a NULL wrapping (tombstone)."""

    def __init__(self, dsn: str, *, pool_size: int = 4) -> None:
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=True,
            name="fangxin-keys",
            check=ConnectionPool.check_connection,
        )
        try:
            with self._pool.connection() as conn:
                _create_tables(conn)
        except BaseException:
            self._pool.close()
            raise

    def insert_if_absent(self, key_id: bytes, wrapped: bytes, master_version: int) -> None:
        """Store a new wrapped key unless the id exists (a tombstone included)."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO fangxin_keys (key_id, wrapped, master_version) VALUES (%s, %s, %s)"
                " ON CONFLICT (key_id) DO NOTHING",
                (key_id, wrapped, master_version),
            )

    def get(self, key_id: bytes) -> tuple[bytes | None, int] | None:
        """(wrapped or None when destroyed, master version), or None when unknown."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT wrapped, master_version FROM fangxin_keys WHERE key_id = %s", (key_id,)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def get_many(self, key_ids: Sequence[bytes]) -> dict[bytes, tuple[bytes | None, int]]:
        """Several keys in one round trip; unknown ids are left out."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT key_id, wrapped, master_version FROM fangxin_keys"
                " WHERE key_id = ANY(%s::bytea[])",
                (list(key_ids),),
            ).fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def destroy(self, key_ids: Iterable[bytes]) -> int:
        """Tombstone keys (also ids never used); returns how many held a key."""
        ids = list(dict.fromkeys(key_ids))
        if not ids:
            return 0
        with self._pool.connection() as conn, conn.transaction():
            # Tombstones first: a key being made at this moment in another worker then either
            # lands before them (and the UPDATE below nulls it) or finds the tombstone.
            conn.execute(
                "INSERT INTO fangxin_keys (key_id, wrapped, master_version)"
                " SELECT k, NULL, 0 FROM unnest(%s::bytea[]) AS k"
                " ON CONFLICT (key_id) DO NOTHING",
                (ids,),
            )
            cursor = conn.execute(
                "UPDATE fangxin_keys SET wrapped = NULL"
                " WHERE key_id = ANY(%s::bytea[]) AND wrapped IS NOT NULL",
                (ids,),
            )
            return cursor.rowcount

    def rows(self) -> list[tuple[bytes, bytes, int]]:
        """Every live key: (id, wrapped, master version)."""
        with self._pool.connection() as conn:
            found = conn.execute(
                "SELECT key_id, wrapped, master_version FROM fangxin_keys"
                " WHERE wrapped IS NOT NULL ORDER BY key_id"
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in found]

    def rewrap(self, key_id: bytes, wrapped: bytes, master_version: int) -> None:
        """Replace the wrapping of a live key (a tombstone stays one)."""
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE fangxin_keys SET wrapped = %s, master_version = %s"
                " WHERE key_id = %s AND wrapped IS NOT NULL",
                (wrapped, master_version, key_id),
            )

    def get_setting(self, name: str) -> str | None:
        """A small named value kept with the keys."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT value FROM fangxin_key_settings WHERE name = %s", (name,)
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def set_setting(self, name: str, value: str) -> None:
        """Keep a small named value."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO fangxin_key_settings (name, value) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()
