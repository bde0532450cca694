"""Wrapped data keys in PostgreSQL, for deployments with several workers on several machines.

The same rows as the SQLite backend: a destroyed key keeps its id with no wrapping (its
tombstone), in the same row, so that the primary key orders a destruction and a concurrent
creation of the same key (the creation lands first and is destroyed, or finds the tombstone).

What PostgreSQL keeps of a destroyed key: the row's previous version, wrapping included, stays
in the table file as a dead tuple, and a plain VACUUM may leave its bytes in the page's free
space. So the key table is split by hash of the key id into `PARTS` small partitions; a
destruction marks its partition, and `compact` rewrites each marked partition (`VACUUM FULL`,
a new file) once no transaction that could still see the destroyed row is open. The WAL and
whatever was copied from it (archives, base backups, replicas) keep the wrapping until the
master key version it was wrapped under is retired (`fangxin keys rotate-master`).

Every call is one short autocommitted transaction on a small pool; nothing is cached here
(the KeyStore caches unwrapped keys).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

log = logging.getLogger("fangxin.keys")

# One lock for all of Fangxin's DDL (the audit tables use it too): workers start at once, and
# concurrent CREATE TABLE IF NOT EXISTS of one table can fail on the catalog's unique index.
_PG_SCHEMA_LOCK = 0x66616E6778696E
# Held by the one worker compacting the key table at a time.
_COMPACTION_LOCK = 0x66616E6778696F

# A partition is rewritten whole, under a lock that holds up reads of its keys: small parts
# keep that short (a few milliseconds per thousand keys) while the planner still prunes well.
PARTS = 16
# A compaction waits this long for a partition's readers (key reads take milliseconds), then
# tries again next round: while it waits, new readers of that partition queue behind it.
COMPACTION_LOCK_TIMEOUT = "500ms"

_Connection = psycopg.Connection[tuple[Any, ...]]


def _schema_ready(conn: _Connection) -> bool:
    row = conn.execute(
        "SELECT to_regclass('fangxin_key_compaction') IS NOT NULL"
        " AND to_regclass('fangxin_key_settings') IS NOT NULL"
        " AND (SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('fangxin_keys'))"
    ).fetchone()
    return row is not None and bool(row[0])


def _create_tables(conn: _Connection) -> None:
    # Checked first so that workers without DDL rights start once `fangxin migrate` ran:
    # CREATE TABLE IF NOT EXISTS needs the CREATE privilege even when the table exists.
    if _schema_ready(conn):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
        if _schema_ready(conn):
            return
        earlier = conn.execute(
            "SELECT relkind = 'r' FROM pg_class WHERE oid = to_regclass('fangxin_keys')"
        ).fetchone()
        if earlier is not None and earlier[0]:
            # Keys kept before the table was partitioned: moved over, then the old file goes
            # with the destroyed keys' dead rows in it.
            conn.execute("ALTER TABLE fangxin_keys RENAME TO fangxin_keys_unpartitioned")
            conn.execute(
                "ALTER INDEX IF EXISTS fangxin_keys_pkey RENAME TO fangxin_keys_unpartitioned_pkey"
            )
        conn.execute(
            "CREATE TABLE fangxin_keys ("
            " key_id bytea PRIMARY KEY, wrapped bytea NULL, master_version int NOT NULL)"
            " PARTITION BY HASH (key_id)"
        )
        for part in range(PARTS):
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF fangxin_keys"
                    " FOR VALUES WITH (MODULUS {}, REMAINDER {})"
                ).format(
                    sql.Identifier(f"fangxin_keys_{part}"), sql.Literal(PARTS), sql.Literal(part)
                )
            )
        if earlier is not None and earlier[0]:
            conn.execute(
                "INSERT INTO fangxin_keys (key_id, wrapped, master_version)"
                " SELECT key_id, wrapped, CASE WHEN wrapped IS NULL THEN 0 ELSE master_version END"
                " FROM fangxin_keys_unpartitioned"
            )
            conn.execute("DROP TABLE fangxin_keys_unpartitioned")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS fangxin_key_settings (name text PRIMARY KEY, value text)"
        )
        # A partition holding a destroyed key's old row, and the newest transaction that
        # destroyed one there: the partition is rewritten once every snapshot is newer.
        conn.execute(
            "CREATE TABLE fangxin_key_compaction ("
            " part oid PRIMARY KEY, destroyed_by xid8 NOT NULL)"
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
        """Tombstone keys (also ids never used) and mark their partitions for compaction;
        returns how many held a key."""
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
            row = conn.execute(
                "WITH shredded AS ("
                "  UPDATE fangxin_keys SET wrapped = NULL, master_version = 0"
                "  WHERE key_id = ANY(%s::bytea[]) AND wrapped IS NOT NULL RETURNING tableoid"
                "), marked AS ("
                "  INSERT INTO fangxin_key_compaction (part, destroyed_by)"
                "  SELECT DISTINCT tableoid, pg_current_xact_id() FROM shredded"
                "  ON CONFLICT (part) DO UPDATE SET destroyed_by ="
                "   greatest(fangxin_key_compaction.destroyed_by, excluded.destroyed_by)"
                ") SELECT count(*) FROM shredded",
                (ids,),
            ).fetchone()
            return int(row[0]) if row is not None else 0

    def compact(self) -> int:
        """Rewrite each partition that held a destroyed key, once no open transaction can
        still see that key's row; returns how many were rewritten. One worker at a time."""
        with self._pool.connection() as conn:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_COMPACTION_LOCK,))
            if not _first(locked.fetchone()):
                return 0
            try:
                conn.execute(f"SET lock_timeout = '{COMPACTION_LOCK_TIMEOUT}'")
                return sum(_compact(conn, *marked) for marked in _marked(conn))
            finally:
                conn.execute("RESET lock_timeout")
                conn.execute("SELECT pg_advisory_unlock(%s)", (_COMPACTION_LOCK,))

    def stale(self, current: int, after: bytes, limit: int) -> list[tuple[bytes, bytes, int]]:
        """Live keys not wrapped under `current`, by id, from after `after`."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT key_id, wrapped, master_version FROM fangxin_keys"
                " WHERE wrapped IS NOT NULL AND master_version <> %s AND key_id > %s"
                " ORDER BY key_id LIMIT %s",
                (current, after, limit),
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def rewrap_many(self, rows: Sequence[tuple[bytes, bytes, int, int]]) -> int:
        """New wrappings of live keys still under their previous version, in one statement: a
        destruction that commits first leaves nothing to rewrap (its row is re-read once
        it commits), and one that commits after nulls the new wrapping."""
        if not rows:
            return 0
        columns = [list(column) for column in zip(*rows, strict=True)]
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE fangxin_keys AS k SET wrapped = v.wrapped, master_version = v.version"
                " FROM unnest(%s::bytea[], %s::bytea[], %s::int[], %s::int[])"
                "  AS v(key_id, wrapped, version, previous)"
                " WHERE k.key_id = v.key_id AND k.master_version = v.previous"
                " AND k.wrapped IS NOT NULL",
                columns,
            )
            return cursor.rowcount

    def versions(self) -> dict[int, int]:
        """How many live keys each master key version wraps."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT master_version, count(*) FROM fangxin_keys"
                " WHERE wrapped IS NOT NULL GROUP BY master_version"
            ).fetchall()
        return {int(version): int(count) for version, count in rows}

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


def _first(row: tuple[Any, ...] | None) -> Any:
    return None if row is None else row[0]


def _marked(conn: _Connection) -> list[tuple[int, str, str, Any]]:
    """Marked partitions: (oid, schema, name, newest destroying transaction)."""
    rows = conn.execute(
        "SELECT c.oid, n.nspname, c.relname, m.destroyed_by FROM fangxin_key_compaction m"
        " JOIN pg_class c ON c.oid = m.part JOIN pg_namespace n ON n.oid = c.relnamespace"
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


# Any snapshot that could still see the row as it was before the destroying transaction: a
# session's (a long report, pg_dump), a replication slot's, a prepared transaction's. Plain
# VACUUM, autovacuum's included, holds no row back from VACUUM FULL.
_STILL_SEEN = (
    "SELECT EXISTS (SELECT FROM pg_stat_activity"
    "  WHERE pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'"
    "  AND (age(backend_xmin) >= age(xid(%(by)s)) OR age(backend_xid) >= age(xid(%(by)s))))"
    " OR EXISTS (SELECT FROM pg_replication_slots WHERE age(xmin) >= age(xid(%(by)s)))"
    " OR EXISTS (SELECT FROM pg_prepared_xacts WHERE age(transaction) >= age(xid(%(by)s)))"
)


def _compact(conn: _Connection, part: int, schema: str, name: str, destroyed_by: Any) -> int:
    """Rewrite one marked partition when nothing can still see its destroyed rows."""
    if _first(conn.execute(_STILL_SEEN, {"by": destroyed_by}).fetchone()):
        return 0  # a VACUUM FULL now would copy the old row along; next round
    before = _first(conn.execute("SELECT pg_relation_filenode(%s)", (part,)).fetchone())
    try:
        conn.execute(sql.SQL("VACUUM (FULL) {}").format(sql.Identifier(schema, name)))
    except psycopg.errors.LockNotAvailable:
        return 0  # busy readers: next round
    after = _first(conn.execute("SELECT pg_relation_filenode(%s)", (part,)).fetchone())
    if after == before:
        # VACUUM skips, with a warning only, a table this role does not own.
        log.warning(
            "destroyed keys remain in the key table's files: this database role cannot"
            " rewrite it; run `fangxin keys compact` as the owner of the key tables",
            extra={"partition": name},
        )
        return 0
    conn.execute(
        "DELETE FROM fangxin_key_compaction WHERE part = %s AND destroyed_by = %s",
        (part, destroyed_by),
    )
    return 1
