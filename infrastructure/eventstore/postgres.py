"""The PostgreSQL event store's insert, lean enough for group commits of many events.

The batch goes as four plain arrays in binary, after the same EXCLUSIVE table lock the library
takes, in one transaction; the library's insert builds a composite-type array element by
element in Python and notifies LISTEN subscribers, which Fangxin does not use (its runner
follows the log itself). Reads, schema, errors and retries stay the library's.

The lock, the insert and the commit are one statement, a server-side function called on an
autocommit connection, so the table lock is never held while a busy client prepares its next
step. A database migrated before the function existed is written with the lock and the insert
sent apart until `fangxin migrate` runs.

A group commit names each event's writer (`insert_by_writer`): a writer whose event is at a
version taken already (a concurrent change in another worker) is refused whole by the same
statement, and the rest of the batch inserted. Figures: docs/adr/0008.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.errors import UndefinedFunction
from psycopg.sql import SQL, Identifier

from infrastructure.eventstore.postgres_arrays import event_columns, int_array

log = logging.getLogger("fangxin.store")

TOPIC = "infrastructure.eventstore.postgres:GroupCommitRecorder"


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
            "SELECT notification_id FROM {0}("
            "%s::uuid[], %s::bigint[], %s::text[], %s::bytea[], %s::integer[]) AS notification_id"
        ).format(function)
        # Created with the tables (by `fangxin migrate` in production). Each event names its
        # writer (an index into the batch); a writer any of whose events is at a version taken
        # already is refused whole, under the lock, before anything is inserted: a conflict
        # costs neither a rolled-back batch, nor ids left unused (gaps), nor another round trip.
        # The check sees every commit before the lock was granted since the statement runs at
        # READ COMMITTED (autocommit); at a stricter level a missed conflict would still fail
        # the insert. The result is the inserted events' ids in order, then -1 - w
        # for each refused writer w.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {0}("
                "ids uuid[], versions bigint[], topics text[], states bytea[], writers integer[])"
                " RETURNS SETOF bigint LANGUAGE plpgsql"
                " SET lock_timeout = '{1}s'"
                # The check's plan is made once per connection and kept: made while the table
                # was small it would scan it whole, for ever after (until an ANALYZE).
                " SET enable_seqscan = off"
                " AS $body$ DECLARE refused integer[]; BEGIN"
                " LOCK TABLE {2} IN EXCLUSIVE MODE;"
                " SELECT array_agg(DISTINCT u.writer) INTO refused"
                " FROM unnest(ids, versions, writers) AS u(id, version, writer)"
                " JOIN {2} AS e ON e.originator_id = u.id AND e.originator_version = u.version;"
                " IF refused IS NULL THEN"
                " RETURN QUERY INSERT INTO {2} (originator_id, originator_version, topic, state)"
                " SELECT * FROM unnest(ids, versions, topics, states)"
                " RETURNING notification_id;"
                " ELSE"
                " RETURN QUERY INSERT INTO {2} (originator_id, originator_version, topic, state)"
                " SELECT u.id, u.version, u.topic, u.state"
                " FROM unnest(ids, versions, topics, states, writers)"
                " AS u(id, version, topic, state, writer) WHERE u.writer <> ALL (refused)"
                " RETURNING notification_id;"
                " RETURN QUERY SELECT -1 - w::bigint FROM unnest(refused) AS w;"
                " END IF;"
                " END $body$"
            ).format(function, datastore.lock_timeout, table)
        )
        # The function of the release before (four arguments, refusing nothing) is left in
        # place: its workers may still be running while `fangxin migrate` runs for this one.
        self._has_function = True

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the events in one transaction; their notification ids, in their order.

        Raises `IntegrityError` if any event is at a version taken already, inserting nothing.
        """
        ids = self.insert_by_writer(stored_events, [0] * len(stored_events))
        if None in ids:
            raise IntegrityError("an event's version is taken already: a concurrent change")
        return cast(list[int], ids)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_by_writer(
        self, stored_events: Sequence[StoredEvent], writers: Sequence[int]
    ) -> list[int | None]:
        """Insert a group commit's batch in one transaction: each event's notification id,
        or None for every event of a writer that was refused whole for a conflict.

        `writers[i]` names the writer of `stored_events[i]` (small non-negative integers).
        """
        if not stored_events:
            return []
        params = (*event_columns(stored_events), int_array(writers))
        with self.datastore.get_connection() as conn:
            if self._has_function:
                try:
                    # Autocommit: the statement is its own transaction, committed on return.
                    rows = conn.execute(self._call_statement, params, binary=True).fetchall()
                    return _by_event([row["notification_id"] for row in rows], writers)
                except UndefinedFunction:
                    log.warning("the insert function is missing: run `fangxin migrate`")
                    self._has_function = False
            with conn.transaction():
                conn.execute(self._lock_statement)
                rows = conn.execute(self._insert_statement, params[:4], binary=True).fetchall()
        return [row["notification_id"] for row in rows]


def _by_event(returned: list[int], writers: Sequence[int]) -> list[int | None]:
    """The function's answer (ids of inserted events, then -1 - w per refused writer w) as
    one id per event, None for the events of refused writers."""
    ids = [n for n in returned if n > 0]
    refused = {-1 - n for n in returned if n < 0}
    kept = sum(1 for writer in writers if writer not in refused)
    if len(ids) != kept:  # never seen; an answer that cannot be matched to the events
        raise InternalError(f"the insert returned {len(ids)} ids for {kept} events")
    it = iter(ids)
    return [None if writer in refused else next(it) for writer in writers]
