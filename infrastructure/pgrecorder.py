"""The PostgreSQL event store's insert, lean enough for group commits of many events.

eventsourcing's recorder inserts a batch through a composite-type array that psycopg builds
element by element in Python, in a pipeline that also notifies LISTEN subscribers. Fangxin
does not subscribe that way (its runner follows the log itself, woken by a Redis doorbell),
so this recorder sends the batch as four plain arrays in binary, after taking the same
EXCLUSIVE table lock, in one transaction: about half the CPU of the library's insert and a
shorter hold of the lock (measured: 430 µs instead of 760 µs CPU, 0.9 ms instead of 1.3 ms
for 30 events). Everything else (reads, schema, errors, retries) is the library's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

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

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        """Insert the events in one transaction; their notification ids, in their order."""
        if not stored_events:
            return []
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute(self._lock_statement)
            rows = conn.execute(self._insert_statement, params, binary=True).fetchall()
        return [row["notification_id"] for row in rows]
