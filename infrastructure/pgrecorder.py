"""The PostgreSQL event store's insert, lean enough for group commits of many events.

eventsourcing's recorder inserts a batch through a composite-type array that psycopg builds
element by element in Python, in a pipeline that also notifies LISTEN subscribers. Fangxin
does not subscribe that way (its runner follows the log itself, woken by a Redis doorbell),
so this recorder sends the batch as four plain arrays in binary, after taking the same
EXCLUSIVE table lock, in one transaction: about half the CPU of the library's insert and a
shorter hold of the lock (measured: 430 µs instead of 760 µs CPU, 0.9 ms instead of 1.3 ms
for 30 events). Everything else (reads, schema, errors, retries) is the library's.

The lock, the insert and the commit happen in one statement, a server-side function called on
an autocommit connection: one round trip, and the table lock is held only while PostgreSQL
inserts and flushes the commit, never while the client (a thread of a busy Python process,
waiting for its GIL) prepares the next step. A database migrated before the function existed
is written to with the lock and the insert sent apart, as before, until `fangxin migrate`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.errors import UndefinedFunction
from psycopg.sql import SQL, Identifier

from infrastructure.pgarrays import event_columns

log = logging.getLogger("fangxin.store")

TOPIC = "infrastructure.pgrecorder:GroupCommitRecorder"


class GroupCommitRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL application recorder with a leaner `insert_events`."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        table = Identifier(datastore.schema, self.events_table_name)
        # Ids are taken under the table lock, so they follow commit order (readers, and the
        # projection's gap check, rely on it); one simple-protocol round trip for both.
        self._lock_statement = SQL(
            "SET LOCAL lock_timeout = '{0}s'; LOCK TABLE {1} IN EXCLUSIVE MODE"
        ).format(datastore.lock_timeout, table)
        self._insert_statement = SQL(
            "INSERT INTO {0} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[])"
            " RETURNING notification_id"
        ).format(table)
        function = Identifier(datastore.schema, f"fangxin_insert_{self.events_table_name}")
        self._call_statement = SQL(
            "SELECT notification_id"
            " FROM {0}(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) AS notification_id"
        ).format(function)
        # Created with the tables (by `fangxin migrate` in production).
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {0}("
                "ids uuid[], versions bigint[], topics text[], states bytea[])"
                " RETURNS SETOF bigint LANGUAGE plpgsql"
                " SET lock_timeout = '{1}s' AS $body$ BEGIN"
                " LOCK TABLE {2} IN EXCLUSIVE MODE;"
                " RETURN QUERY INSERT INTO {2} (originator_id, originator_version, topic, state)"
                " SELECT * FROM unnest(ids, versions, topics, states)"
                " RETURNING notification_id;"
                " END $body$"
            ).format(function, datastore.lock_timeout, table)
        )
        self._has_function = True

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        """Insert the events in one transaction; their notification ids, in their order."""
        if not stored_events:
            return []
        params = event_columns(stored_events)
        with self.datastore.get_connection() as conn:
            if self._has_function:
                try:
                    # Autocommit: the statement is its own transaction, committed on return.
                    rows = conn.execute(self._call_statement, params, binary=True).fetchall()
                    return [row["notification_id"] for row in rows]
                except UndefinedFunction:
                    log.warning("the insert function is missing: run `fangxin migrate`")
                    self._has_function = False
            with conn.transaction():
                conn.execute(self._lock_statement)
                rows = conn.execute(self._insert_statement, params, binary=True).fetchall()
        return [row["notification_id"] for row in rows]
