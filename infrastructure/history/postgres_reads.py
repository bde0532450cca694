"""The PostgreSQL history's queries: each names its UTC day range, so the planner reads only
those days' partitions (a stay that began on an earlier day is reached by starting the range
`longest` before the window, the longest any stay lasted).

Each read is one round trip: in the same pipeline as its query goes the freshness check (the
position, the log's head, the longest stay). Only when the log moved past the position (or a
longer stay was written) is the history caught up and the query sent again: a client reads
its own writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any, overload
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import DictRow, Row, RowFactory, tuple_row
from psycopg.sql import SQL, Composable, Composed, Identifier

from domain.ports import ExposureView, VisitView
from domain.tracing import Stay
from infrastructure.history import postgres_columns as cols
from infrastructure.history import postgres_schema as schema
from infrastructure.history.rows import utc_day
from infrastructure.history.sealing import RowKeys

_VISIT = SQL("visit_id, venue_id, checked_in, checked_out, reason, via, people")
_STAY_COLUMNS = ("visit_id", "venue_id", "checked_in", "checked_out", "dwell_until", "people")
_STAY = SQL(", ").join(map(Identifier, _STAY_COLUMNS))
_KEYS = ("guardian", "venue_id", "person")
Query = tuple[Composed, tuple[Any, ...]]
_NO_JIT = SQL("SET LOCAL jit = off")


class Reads:
    """Queries of the history tables."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        names: dict[str, Identifier],
        row_keys: RowKeys,
        tracking: Identifier,
        events: Identifier,
        catch_up: Callable[[], int],
    ) -> None:
        self._ds = datastore
        self._names = names
        self._row_keys = row_keys
        self._catch_up = catch_up
        # Only grows (retention never shortens it): a lookup made with a smaller one is sent
        # again with the larger.
        self._longest = 0
        self._freshness = SQL(
            "SELECT (SELECT notification_id FROM {tracking} WHERE application_name = %s) AS p,"
            " (SELECT max(notification_id) FROM {events}) AS h,"
            " (SELECT longest_seconds FROM {state}) AS l"
        ).format(tracking=tracking, events=events, state=names["state"])

    def _sql(self, text: str, **more: Any) -> Composed:
        return SQL(text).format(**self._names, **more)

    def freshness(self) -> tuple[int, int, int]:
        """(position, the log's head, the longest stay in seconds)."""
        with self._ds.get_connection() as conn:
            row = conn.execute(self._freshness, (schema.APPLICATION,), prepare=True).fetchone()
        assert row is not None
        return int(row["p"] or 0), int(row["h"] or 0), int(row["l"] or 0)

    @overload
    def _fetch(
        self, make: Callable[[int], Query], *, jit: bool = ..., binary: bool = ...
    ) -> list[DictRow]: ...

    @overload
    def _fetch(
        self,
        make: Callable[[int], Query],
        *,
        jit: bool = ...,
        binary: bool = ...,
        rows: RowFactory[Row],
    ) -> list[Row]: ...

    def _fetch(
        self,
        make: Callable[[int], Query],
        *,
        jit: bool = True,
        binary: bool = False,
        rows: RowFactory[Any] | None = None,
    ) -> list[Any]:
        """The rows of a query made for the longest stay known, with the freshness check in
        the same round trip; sent again after catching up when the log moved.

        Without `jit`, the query runs in a transaction that turns JIT compilation off: a
        batch's plan is costed for thousands of index lookups, past the JIT threshold, and
        compiling it takes longer than the short indexed reads it does. `rows` makes its rows
        (dicts by default) and `binary` has them sent in binary: where thousands are read,
        tuples and binary uuids, times and bytea cost the client less to decode."""
        longest = self._longest
        statement, params = make(longest)
        with self._ds.get_connection() as conn:
            with conn.pipeline(), conn.transaction() if not jit else nullcontext():
                if not jit:
                    conn.execute(_NO_JIT, prepare=True)
                fresh = conn.execute(self._freshness, (schema.APPLICATION,), prepare=True)
                found = conn.cursor(row_factory=rows or conn.row_factory)
                cols.register(found)
                found.execute(statement, params, prepare=True, binary=binary)
            row = fresh.fetchone()
            result = found.fetchall()
        assert row is not None
        position, head = int(row["p"] or 0), int(row["h"] or 0)
        if head <= position and int(row["l"] or 0) <= longest:
            return result
        if head > position:
            self._catch_up()
        self._longest = max(self._longest, self.freshness()[2])
        statement, params = make(self._longest)
        with self._ds.get_connection() as conn, conn.transaction() if not jit else nullcontext():
            if not jit:
                conn.execute(_NO_JIT, prepare=True)
            again = conn.cursor(row_factory=rows or conn.row_factory)
            cols.register(again)
            return again.execute(statement, params, prepare=True, binary=binary).fetchall()

    def visit(self, visit_id: UUID) -> VisitView | None:
        """One visit, from whichever day's partition holds it."""
        statement = self._sql("SELECT {columns} FROM {visits} WHERE visit_id = %s", columns=_VISIT)
        rows = self._fetch(lambda _: (statement, (visit_id,)))
        return self._visit(rows[0]) if rows else None

    def visits(self, key: str, value: Any, start: datetime, end: datetime) -> list[VisitView]:
        """Visits whose `key` column is `value` that began in [start, end), oldest first."""
        query = self.visits_query(key, value, start, end)
        rows = self._fetch(lambda _: query)
        return [view for view in map(self._visit, rows) if view is not None]

    def visits_query(self, key: str, value: Any, start: datetime, end: datetime) -> Query:
        """The statement and parameters of `visits` (the planner prunes by the day range)."""
        if key not in _KEYS:
            raise ValueError(key)
        if key == "guardian":  # their own visits by `person`, their dependents' by `guardian`
            match: Composable = SQL(
                "(person = %s AND guardian = %s OR guardian = %s AND guardian <> person)"
            )
            values: tuple[Any, ...] = (value, value, value)
        else:
            match, values = SQL("{0} = %s").format(Identifier(key)), (value,)
        statement = self._sql(
            "SELECT {columns} FROM {visits} WHERE {match}"
            " AND day BETWEEN %s AND %s AND checked_in >= %s AND checked_in < %s"
            " ORDER BY checked_in, visit_id",
            columns=_VISIT,
            match=match,
        )
        return statement, (*values, utc_day(start), utc_day(end), start, end)

    def _visit(self, row: Any) -> VisitView | None:
        people = self._row_keys.open_people(row["visit_id"], row["people"])
        if people is None:
            return None
        visitor_id, guardian_id = people
        return VisitView(
            visit_id=row["visit_id"],
            visitor_id=visitor_id,
            guardian_id=guardian_id,
            venue_id=row["venue_id"],
            checked_in_at=row["checked_in"],
            via=row["via"],
            checked_out_at=row["checked_out"],
            checkout_reason=row["reason"],
        )

    def stays_query(
        self, key: str, value: Any, t0: datetime, t1: datetime, longest: int
    ) -> tuple[Composed, tuple[Any, ...]]:
        """The statement and parameters of `stays` (the planner prunes by the day range)."""
        if key not in _KEYS:
            raise ValueError(key)
        earliest = t0 - timedelta(seconds=longest)
        statement = self._sql(
            "SELECT {columns} FROM {visits} WHERE {key} = %s AND day BETWEEN %s AND %s"
            " AND checked_in BETWEEN %s AND %s AND ends >= %s",
            columns=_STAY,
            key=Identifier(key),
        )
        return statement, (value, utc_day(earliest), utc_day(t1), earliest, t1, t0)

    def stays(self, key: str, value: Any, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays whose `key` column is `value` intersecting [t0, t1], sorted by start."""
        rows = self._fetch(lambda longest: self.stays_query(key, value, t0, t1, longest))
        found = [s for row in rows if (s := self._stay(row, now)) is not None and s.end >= t0]
        found.sort(key=lambda stay: (stay.start, stay.visit_id))
        return found

    def stays_many_query(
        self, key: str, windows: Sequence[tuple[Any, datetime, datetime]], longest: int
    ) -> Query:
        """The statement and parameters of `stays_many`: the windows as arrays, joined to the
        visits by their key. The whole day range is named as constants (the planner prunes
        every other day's partitions) and each window's own days too (pruned again per window
        as the join runs)."""
        if key not in _KEYS:
            raise ValueError(key)
        back = timedelta(seconds=longest)
        earliest = [t0 - back for _, t0, _ in windows]
        ends = [t1 for _, _, t1 in windows]
        statement = self._sql(
            "SELECT w.i, v.* FROM unnest(%s::{kind}[], %s::timestamptz[],"
            " %s::timestamptz[], %s::timestamptz[], %s::date[], %s::date[])"
            " WITH ORDINALITY AS w(k, t0, t1, earliest, d0, d1, i)"
            " CROSS JOIN LATERAL (SELECT {columns} FROM {visits}"
            " WHERE {key} = w.k AND day BETWEEN w.d0 AND w.d1 AND day BETWEEN %s AND %s"
            " AND checked_in BETWEEN w.earliest AND w.t1 AND ends >= w.t0 OFFSET 0) v",
            columns=_STAY,
            kind=SQL("bytea" if key in ("person", "guardian") else "uuid"),
            key=Identifier(key),
        )
        first_days = [utc_day(t) for t in earliest]
        last_days = [utc_day(t) for t in ends]
        values = [value for value, _, _ in windows]
        # Packed in the binary wire format in one pass each (psycopg's generic array dumper
        # goes element by element: thousands of windows at depth 2).
        params = (
            cols.byteas(values) if key in ("person", "guardian") else cols.uuids(values),
            cols.times([t0 for _, t0, _ in windows]),
            cols.times(ends),
            cols.times(earliest),
            cols.dates(first_days),
            cols.dates(last_days),
            min(first_days),
            max(last_days),
        )
        return statement, params

    def stays_many(
        self, key: str, windows: Sequence[tuple[Any, datetime, datetime]], now: datetime
    ) -> list[list[Stay]]:
        """`stays` of each (value, t0, t1) window, in their order: one query, one round trip."""
        if not windows:
            return []
        rows = self._fetch(
            lambda longest: self.stays_many_query(key, windows, longest),
            jit=False,
            binary=True,
            rows=tuple_row,
        )
        found: list[list[Stay]] = [[] for _ in windows]
        # Windows of one batch overlap (contacts met at the same venues): open each row once,
        # and only its visitor (the guardian is no part of a stay).
        opened: dict[UUID, Stay | None] = {}
        open_visitor = self._row_keys.open_visitor
        for i, visit_id, venue_id, start, out, dwell_until, people in rows:
            if visit_id in opened:
                stay = opened[visit_id]
            else:
                visitor_id = open_visitor(visit_id, people)
                end = max(out, start) if out is not None else max(start, min(dwell_until, now))
                stay = (
                    None if visitor_id is None else Stay(visit_id, visitor_id, venue_id, start, end)
                )
                opened[visit_id] = stay
            if stay is not None and stay.end >= windows[i - 1][1]:
                found[i - 1].append(stay)
        for stays in found:
            stays.sort(key=lambda stay: (stay.start, stay.visit_id))
        return found

    def _stay(self, row: Any, now: datetime) -> Stay | None:
        """The stay of a row (open ones resolved at `now`), if it can be opened."""
        people = self._row_keys.open_people(row["visit_id"], row["people"])
        if people is None:
            return None
        start, out = row["checked_in"], row["checked_out"]
        end = max(out, start) if out is not None else max(start, min(row["dwell_until"], now))
        return Stay(row["visit_id"], people[0], row["venue_id"], start, end)

    def exposures(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures at a venue overlapping [start, end], in the order they were declared."""
        statement = self._sql(
            "SELECT exposure_id, venue_id, starts, ends, declared_at, sealed"
            " FROM {exposures} WHERE venue_id = %s AND starts <= %s AND ends >= %s"
            " ORDER BY declared_at, exposure_id"
        )
        rows = self._fetch(lambda _: (statement, (venue_id, end, start)))
        found = (
            self._row_keys.open_exposure(
                r["exposure_id"],
                r["venue_id"],
                (r["starts"], r["ends"], r["declared_at"]),
                r["sealed"],
            )
            for r in rows
        )
        return [exposure for exposure in found if exposure is not None]
