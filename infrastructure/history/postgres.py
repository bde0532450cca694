"""The history in PostgreSQL (production): tables partitioned by UTC day, written exactly once.

`catch_up` applies the log in batches, each in ONE transaction: it takes a transaction-scoped
advisory lock (one writer of the history at a time, whichever worker), reads the tracking
position, reads the notifications after it, writes their rows and the new position, and
commits. A batch killed halfway leaves nothing behind, and its events are applied again by the
next one; a second worker waiting on the lock then reads the new position and applies only
what is new. The log's ids follow commit order (its insert takes the events table's EXCLUSIVE
lock, ADR 0008), so nothing committed later can land below the position.

The tracking table is eventsourcing's (`PostgresTrackingRecorder`: one row per application,
advanced only forwards), written with the library's own statement inside the batch.
Rows hold pseudonymous ids and times only (`sealing`). Retention: `postgres_retention`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from domain.ports import ExposureView, VisitView
from domain.tracing import Stay, Window
from infrastructure.history import postgres_columns as cols
from infrastructure.history import postgres_schema as schema
from infrastructure.history.changes import Changes, grouped
from infrastructure.history.log import BATCH, Batch, Follower
from infrastructure.history.postgres_reads import Reads
from infrastructure.history.postgres_retention import Retention
from infrastructure.history.rows import DayKeys, Rows
from infrastructure.history.sealing import RowKeys
from infrastructure.keys.keystore import KeyStore


class PostgresHistory:
    """Visits, stays and exposures in day partitions of the log's own database."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        keys: KeyStore,
        *,
        row_keys: RowKeys | None = None,
        datastore: PostgresDatastore | None = None,
        create_tables: bool = True,
        batch: int = BATCH,
        vacuum_full: bool = False,
        default_max_dwell_minutes: int = 180,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._keys = keys
        self._row_keys = row_keys or RowKeys.of(keys)
        found: Any = datastore or getattr(recorder, "datastore", None)
        if not isinstance(found, PostgresDatastore):
            raise TypeError("the PostgreSQL history needs a PostgreSQL datastore")
        if found.pool.max_size < 2:  # a batch makes a day's partitions on a second connection
            raise ValueError("the PostgreSQL history needs a pool of at least two connections")
        self._ds = found
        self._schema = found.schema
        self._names = schema.names(self._schema)
        log_schema = getattr(getattr(recorder, "datastore", found), "schema", self._schema)
        self._events = Identifier(log_schema, getattr(recorder, "events_table_name", ""))
        self._tracking = PostgresTrackingRecorder(found, tracking_table_name=schema.TRACKING)
        self._batch = batch
        self._default_dwell = default_max_dwell_minutes
        self._day_keys = DayKeys(keys.key_id)
        self._lock = threading.Lock()
        self._days: set[date] = set()
        # The position after this worker's last batch: when another worker moved it since,
        # the venues' dwell is read back before going on (`_start`).
        self._applied = -1
        self._lock_key = f"{self._schema}.{schema.TRACKING}"
        if create_tables:
            self.create_tables()
        self._reads = Reads(
            found,
            self._names,
            self._row_keys,
            Identifier(self._schema, schema.TRACKING),
            self._events,
            self.catch_up,
        )
        self._retention = Retention(
            found, self._names, self._events, keys, self._lock_key, vacuum_full
        )
        self._load()
        self._follower = Follower(recorder, mapper, self._fresh_rows, batch)

    def create_tables(self) -> None:
        """Make the tables (`fangxin migrate` in production; idempotent)."""
        self._tracking.create_table()
        with self._ds.transaction(commit=True) as cursor:
            for statement in schema.create_statements(self._schema):
                cursor.execute(statement)

    def _load(self) -> None:
        with self._ds.transaction() as cursor:
            self._days = schema.partition_days(cursor, self._schema)

    def _fresh_rows(self) -> Rows:
        """Rows that know every venue's dwell as committed."""
        rows = Rows(self._default_dwell, self._day_keys)
        with self._ds.transaction() as cursor:
            cursor.execute(self._sql("SELECT venue_id, max_dwell_minutes FROM {venues}"))
            for row in cursor.fetchall():
                rows.know_venue(row["venue_id"], row["max_dwell_minutes"])
        return rows

    def _sql(self, text: str) -> Composed:
        return SQL(text).format(**self._names)

    def close(self) -> None:
        """Nothing of its own to release: the datastore is the recorder's (or the caller's)."""

    # -- writing ------------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply every event beyond the tracking position, each exactly once; how many."""
        with self._lock:
            return self._follower.catch_up(self._start, self._apply_batch)

    def _start(self) -> int:
        """Where to read from; another worker moved the position since this one's last batch,
        so the venues' dwell it knows may be behind: read back."""
        position = self.position()
        if position != self._applied:
            self._follower.rows = self._fresh_rows()
        return position

    def _apply_batch(self, batch: Batch) -> bool:
        """Write the batch, if the position is still where it starts; whether it did."""
        with self._ds.transaction(commit=True) as cursor:
            cols.register(cursor)
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))
            position = self._tracked(cursor)
            if position != batch.start:
                self._applied = -1
                return False
            if not batch.count:
                self._applied = position
                return True
            cursor.execute(self._sql("SELECT dropped_before FROM {state}"))
            state = cursor.fetchone()
            groups = grouped(batch.operations, state["dropped_before"] if state else None)
            self._ensure_partitions(set().union(*(group.days() for group in groups)))
            longest = 0.0
            for group in groups:
                longest = max(longest, self._write(cursor, group))
            if longest:
                cursor.execute(
                    self._sql("UPDATE {state} SET longest_seconds = %s WHERE longest_seconds < %s"),
                    (int(longest) + 1, longest),
                )
            cursor.execute(
                self._tracking.insert_tracking_statement,
                {"application_name": schema.APPLICATION, "notification_id": batch.last},
            )
            if cursor.fetchone() is None:
                raise IntegrityError("the history's position moved under its lock")
        self._applied = batch.last
        return True

    def _tracked(self, cursor: Cursor[DictRow]) -> int:
        cursor.execute(self._tracking.max_tracking_id_statement, (schema.APPLICATION,))
        row = cursor.fetchone()
        return int(row["max"] or 0) if row else 0

    def _ensure_partitions(self, days: set[date]) -> None:
        """Make missing day partitions in a short transaction of their own, so the DDL's lock
        on the parents is not held for the batch."""
        missing = days - self._days
        if missing:
            with self._ds.transaction(commit=True) as cursor:
                schema.create_partitions(cursor, self._schema, missing)
            self._days |= missing

    def _write(self, cursor: Cursor[DictRow], group: Changes) -> float:
        """Write one group; the longest stay it closed or opened, in seconds."""
        longest = 0.0
        if group.venues:
            cursor.execute(
                self._sql(
                    "INSERT INTO {venues} SELECT * FROM unnest(%s::uuid[], %s::integer[])"
                    " ON CONFLICT (venue_id)"
                    " DO UPDATE SET max_dwell_minutes = excluded.max_dwell_minutes"
                ),
                (list(group.venues), list(group.venues.values())),
            )
        if group.visits:
            self._insert_visits(cursor, group)
            longest = max(60.0 * v.max_dwell_minutes for v in group.visits)
        # One statement a check-out, all sent at once (a pipeline), each a lookup of the
        # (visit id, day) index: a join with the batch's array would be planned from the
        # statistics of a partition filling faster than they follow, and scan it whole.
        closes = [close for found in group.closes.values() for close in found]
        if closes:
            cursor.executemany(
                self._sql(
                    "UPDATE {visits} SET checked_out = %s, reason = %s,"
                    " ends = greatest(%s, checked_in)"
                    " WHERE visit_id = %s AND day = %s AND checked_out IS NULL"
                    " RETURNING extract(epoch FROM ends - checked_in) AS seconds"
                ),
                [(c.at, c.reason, c.at, c.visit_id, c.day) for c in closes],
                returning=True,
            )
            while True:
                longest = max([longest, *(float(row["seconds"]) for row in cursor.fetchall())])
                if not cursor.nextset():
                    break
        for visitor_id in group.erased:
            person = self._row_keys.person(visitor_id)
            cursor.execute(
                self._sql(
                    "DELETE FROM {visits} WHERE person = %s OR guardian = %s AND guardian <> person"
                ),
                (person, person),
            )
        if group.exposures:
            self._insert_exposures(cursor, group)
        if group.log_rows:
            days = [day for day, ids in group.log_rows.items() for _ in ids]
            ids = [i for found in group.log_rows.values() for i in found]
            cursor.execute(
                self._sql(
                    "INSERT INTO {log_rows} (day, originator_id)"
                    " SELECT * FROM unnest(%s::date[], %s::uuid[])"
                ),
                (cols.dates(days), cols.uuids(ids)),
                binary=True,
            )
        return longest

    def _insert_visits(self, cursor: Cursor[DictRow], group: Changes) -> None:
        keys = self._row_keys
        visits = [added.visit for added in group.visits]
        until = [
            v.checked_in_at + timedelta(minutes=added.max_dwell_minutes)
            for v, added in zip(visits, group.visits, strict=True)
        ]
        columns = (
            cols.dates([added.day for added in group.visits]),
            cols.uuids([v.visit_id for v in visits]),
            cols.uuids([v.venue_id for v in visits]),
            cols.byteas([keys.person(v.visitor_id) for v in visits]),
            cols.byteas([keys.person(v.guardian_id) for v in visits]),
            cols.times([v.checked_in_at for v in visits]),
            cols.times(until),
            cols.times(until),
            cols.texts([v.via for v in visits]),
            cols.byteas(
                [keys.seal_people(v.visit_id, v.visitor_id, v.guardian_id) for v in visits]
            ),
            cols.texts([None] * len(visits)),
        )
        cursor.execute(
            self._sql(
                "INSERT INTO {visits} (day, visit_id, venue_id, person, guardian, checked_in,"
                " dwell_until, ends, via, people, reason)"
                " SELECT * FROM unnest(%s::date[], %s::uuid[], %s::uuid[], %s::bytea[],"
                " %s::bytea[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[],"
                " %s::text[], %s::bytea[], %s::text[])"
                " ON CONFLICT (visit_id, day) DO NOTHING"
            ),
            columns,
            binary=True,
        )

    def _insert_exposures(self, cursor: Cursor[DictRow], group: Changes) -> None:
        for added in group.exposures:
            e = added.exposure
            cursor.execute(
                self._sql(
                    "INSERT INTO {exposures} VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (exposure_id) DO NOTHING"
                ),
                (
                    e.exposure_id,
                    e.venue_id,
                    e.start,
                    e.end,
                    e.declared_at,
                    self._row_keys.seal_exposure(e),
                ),
            )

    def position(self) -> int:
        """The last notification id applied."""
        with self._ds.transaction() as cursor:
            return self._tracked(cursor)

    # -- reading ------------------------------------------------------------------------------

    def visit(self, visit_id: UUID) -> VisitView | None:
        """One visit (open or closed): looked up in every day's partition."""
        return self._reads.visit(visit_id)

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and their dependents that began in [start, end), oldest first."""
        return self._reads.visits("guardian", self._row_keys.person(guardian_id), start, end)

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        return self._reads.visits("venue_id", venue_id, start, end)

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays at a venue intersecting [t0, t1] (open ones end at in + max dwell, or now)."""
        return self._reads.stays("venue_id", venue_id, t0, t1, now)

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1], sorted by start."""
        return self._reads.stays("person", self._row_keys.person(visitor_id), t0, t1, now)

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_at` of each (venue, t0, t1) window, in their order: one query."""
        return self._reads.stays_many("venue_id", windows, now)

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_of` of each (visitor, t0, t1) window, in their order: one query."""
        person = self._row_keys.person
        return self._reads.stays_many("person", [(person(p), t0, t1) for p, t0, t1 in windows], now)

    def exposures_at(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures declared at a venue overlapping [start, end]."""
        return self._reads.exposures(venue_id, start, end)

    # -- retention ----------------------------------------------------------------------------

    def drop_days_before(self, day: date) -> int:
        """Drop every day before `day` whose key is destroyed: its partitions whole, and the
        log's rows sealed under its key (then VACUUM the events table); how many days."""
        with self._lock:
            self._load()  # other workers may have made partitions since
            dropped = self._retention.drop_days_before(day, sorted(self._days))
            self._days -= set(dropped)
            return len(dropped)
