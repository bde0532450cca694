"""The PostgreSQL history's tables: visits and the log's rows partitioned by UTC day.

Native declarative partitioning (`PARTITION BY RANGE (day)`), one partition per day, made on
demand for the days a batch writes (`CREATE TABLE IF NOT EXISTS ... PARTITION OF`). Indexes are
declared on the parent, so PostgreSQL makes them on every partition: (venue, checked in)
holding a stay's columns too, (person, checked in), (guardian, checked in) of dependents'
visits only, and (visit id, day), unique. A query names its day range, so the planner reads
only those days' partitions; retention drops a day's partitions whole (no DELETE).

`history_log_rows` records, for each day, the log's streams sealed under that day's key
(visits, merchants' notices): retention deletes them from the events table with the day.
Exposures, venues' maximum dwell and the tracking position are small, unpartitioned tables.
"""

from __future__ import annotations

from datetime import date, timedelta

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

VISITS = "history_visits"
LOG_ROWS = "history_log_rows"
EXPOSURES = "history_exposures"
VENUES = "history_venues"
STATE = "history_state"
TRACKING = "history_tracking"
APPLICATION = "history"

_PARENTS = (
    "CREATE TABLE IF NOT EXISTS {visits} ("
    " day date NOT NULL, visit_id uuid NOT NULL, venue_id uuid NOT NULL,"
    " person bytea NOT NULL, guardian bytea NOT NULL,"
    " checked_in timestamptz NOT NULL, checked_out timestamptz,"
    " dwell_until timestamptz NOT NULL, ends timestamptz NOT NULL,"
    " via text NOT NULL, reason text, people bytea NOT NULL"
    ") PARTITION BY RANGE (day)",
    "CREATE UNIQUE INDEX IF NOT EXISTS {visits_id} ON {visits} (visit_id, day)",
    # A contacts search looks up thousands of (venue, time) windows: this index holds every
    # column a stay needs, so on a day VACUUM has marked all-visible each window is one
    # index-only range, its rows side by side in the index, and no heap page is read. It
    # costs the check-out its HOT update (`ends`, `checked_out` are in it), see ADR 0013.
    "CREATE INDEX IF NOT EXISTS {visits_venue_stays} ON {visits} (venue_id, checked_in)"
    " INCLUDE (ends, day, visit_id, checked_out, dwell_until, people)",
    # Its narrower predecessor, from before the covering one (same key: nothing else needs it).
    "DROP INDEX IF EXISTS {visits_venue_before}",
    "CREATE INDEX IF NOT EXISTS {visits_person} ON {visits} (person, checked_in)",
    # A guardian's own visits are found by `person`; only their dependents' need this one.
    "CREATE INDEX IF NOT EXISTS {visits_guardian} ON {visits} (guardian, checked_in)"
    " WHERE guardian <> person",
    "CREATE TABLE IF NOT EXISTS {log_rows} ("
    " day date NOT NULL, originator_id uuid NOT NULL) PARTITION BY RANGE (day)",
    "CREATE TABLE IF NOT EXISTS {exposures} ("
    " exposure_id uuid PRIMARY KEY, venue_id uuid NOT NULL, starts timestamptz NOT NULL,"
    " ends timestamptz NOT NULL, declared_at timestamptz NOT NULL, sealed bytea NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {exposures_venue} ON {exposures} (venue_id, starts)",
    "CREATE TABLE IF NOT EXISTS {venues} (venue_id uuid PRIMARY KEY, max_dwell_minutes integer)",
    # One row: the longest any stay lasted (a lookup reaches that far back for stays that
    # began on earlier days), and the first day retention kept.
    "CREATE TABLE IF NOT EXISTS {state} ("
    " id integer PRIMARY KEY CHECK (id = 1), longest_seconds bigint NOT NULL,"
    " dropped_before date)",
    "INSERT INTO {state} VALUES (1, 0, NULL) ON CONFLICT (id) DO NOTHING",
)


def names(schema: str) -> dict[str, Identifier]:
    """The history's tables and indexes, in `schema`."""
    tables = {
        "visits": VISITS,
        "log_rows": LOG_ROWS,
        "exposures": EXPOSURES,
        "venues": VENUES,
        "state": STATE,
    }
    found = {key: Identifier(schema, name) for key, name in tables.items()}
    for index in (
        "visits_id",
        "visits_venue_stays",
        "visits_person",
        "visits_guardian",
    ):
        found[index] = Identifier(f"{VISITS}_{index.removeprefix('visits_')}_idx")
    found["exposures_venue"] = Identifier(f"{EXPOSURES}_venue_idx")
    # An index is dropped by its schema's name (made in its table's schema, named alone).
    found["visits_venue_before"] = Identifier(schema, f"{VISITS}_venue_idx")
    return found


def create_statements(schema: str) -> list[Composed]:
    """The statements that make the parents and small tables (idempotent)."""
    identifiers = names(schema)
    return [SQL(statement).format(**identifiers) for statement in _PARENTS]


def partition(table: str, day: date) -> str:
    """The name of `table`'s partition of `day`."""
    return f"{table}_{day:%Y%m%d}"


def create_partitions(cursor: Cursor[DictRow], schema: str, days: set[date]) -> None:
    """Make the partitions of these days, if missing.

    A visit's pages keep room for its check-out (`fillfactor`): the row's new version stays on
    its page. (The update changes `ends`, which the venue index holds, so it is not HOT: each
    index gets an entry for it, and autovacuum clears the old ones.)
    """
    for day in sorted(days):
        for table, options in ((VISITS, " WITH (fillfactor = 75)"), (LOG_ROWS, "")):
            cursor.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} PARTITION OF {1}"
                    " FOR VALUES FROM ({2}) TO ({3})" + options
                ).format(
                    Identifier(schema, partition(table, day)),
                    Identifier(schema, table),
                    day.isoformat(),
                    (day + timedelta(days=1)).isoformat(),
                )
            )


def partition_days(cursor: Cursor[DictRow], schema: str) -> set[date]:
    """The days whose visit partitions exist."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace"
        " WHERE n.nspname = %s AND p.relname = %s",
        (schema, VISITS),
    )
    found: set[date] = set()
    for row in cursor.fetchall():
        name = row["relname"]
        digits = name.removeprefix(f"{VISITS}_")
        found.add(date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])))
    return found


def drop_partitions(cursor: Cursor[DictRow], schema: str, day: date) -> None:
    """Drop `day`'s partitions whole."""
    for table in (VISITS, LOG_ROWS):
        cursor.execute(
            SQL("DROP TABLE IF EXISTS {0}").format(Identifier(schema, partition(table, day)))
        )
