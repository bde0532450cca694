"""Retention of the PostgreSQL history: a day past retention goes whole, and so does the log's
ciphertext of that day.

Only a day whose key is destroyed already is dropped (`KeyStore.destroy_days_before` runs
first, in the hourly retention duty): its events are then unreadable, so deleting their rows
changes nothing any reader of the log can see; a rebuild reads the same read models from what
remains. For each such day, oldest first:

1. the log's rows of the streams sealed under that day's key (`history_log_rows`: visits and
   merchants' notices) are deleted from the events table, a chunk per transaction, so that the
   writers' EXCLUSIVE lock on it waits for one chunk at most; stopped halfway, a rerun goes on;
2. under the history's advisory lock, in one transaction, the day's partitions are dropped and
   the state records that days before it are gone (a forgotten event of such a day that a batch
   still reads is not given a partition again);
3. once per call, the events table is VACUUMed (outside any transaction), so the freed space
   is reused. VACUUM does not zero what it frees: until PostgreSQL writes over it, the dead
   tuples' bytes may stay in the table's files (and in the WAL and its archives), though no
   query can read them. `vacuum_full` rewrites the table instead, at the cost of an ACCESS
   EXCLUSIVE lock that stops every writer while it runs.
"""

from __future__ import annotations

from datetime import date, timedelta

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from infrastructure.history import postgres_schema as schema
from infrastructure.keys.keystore import KeyStore, UnknownKeyError

CHUNK = 5000
_ONE_DAY = timedelta(days=1)


class Retention:
    """Drops days of the history and their log rows."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        names: dict[str, Identifier],
        events: Identifier,
        keys: KeyStore,
        lock_key: str,
        vacuum_full: bool = False,
    ) -> None:
        self._ds = datastore
        self._names = names
        self._events = events
        self._keys = keys
        self._lock_key = lock_key
        self._vacuum = "VACUUM (FULL) {0}" if vacuum_full else "VACUUM {0}"

    def destroyed(self, day: date) -> bool:
        """Whether the day's key is destroyed (a day that never had a key sealed nothing)."""
        try:
            return self._keys.key_by_id(self._keys.key_id(f"day:{day.isoformat()}")) is None
        except UnknownKeyError:
            return True

    def drop_days_before(self, day: date, days: list[date]) -> list[date]:
        """Drop the days before `day` among `days` whose key is destroyed; the days dropped."""
        dropped = [d for d in days if d < day and self.destroyed(d)]
        deleted = 0
        for gone in dropped:
            deleted += self._delete_log_rows(gone)
            self._drop(gone, day)
        if deleted:
            with self._ds.get_connection() as conn:  # autocommit: VACUUM runs outside one
                conn.execute(SQL(self._vacuum).format(self._events))
        return dropped

    def _delete_log_rows(self, day: date) -> int:
        rows = Identifier(self._ds.schema, schema.partition(schema.LOG_ROWS, day))
        select = SQL(
            "SELECT originator_id FROM {0} WHERE originator_id > %s ORDER BY originator_id LIMIT %s"
        ).format(rows)
        delete = SQL("DELETE FROM {0} WHERE originator_id = ANY(%s::uuid[])").format(self._events)
        deleted = 0
        after = "00000000-0000-0000-0000-000000000000"
        while True:
            with self._ds.transaction(commit=True) as cursor:
                cursor.execute(select, (after, CHUNK))
                ids = [row["originator_id"] for row in cursor.fetchall()]
                if not ids:
                    return deleted
                cursor.execute(delete, (ids,))
                deleted += cursor.rowcount
            after = str(ids[-1])

    def _drop(self, day: date, kept_from: date) -> None:
        with self._ds.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))
            schema.drop_partitions(cursor, self._ds.schema, day)
            cursor.execute(
                SQL(
                    "UPDATE {state} SET dropped_before = %s"
                    " WHERE dropped_before IS NULL OR dropped_before < %s"
                ).format(state=self._names["state"]),
                (min(day + _ONE_DAY, kept_from), min(day + _ONE_DAY, kept_from)),
            )
