"""Retention: a day past retention goes whole, history and log, and nothing of its ciphertext
is left in any table (nor, for SQLite, in the files); what remains is a fresh rebuild's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from infrastructure.history.rows import DayKeys
from tests.history_log import Log, populate
from tests.history_stores import Stores, history_fixtures, reads_of
from tests.integration.conftest import DATABASE_URL

stores, log, open_history = history_fixtures(["sqlite", "postgres"])

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
OLD = [TODAY - timedelta(days=40), TODAY - timedelta(days=39)]
KEPT = [TODAY - timedelta(days=2), TODAY - timedelta(days=1)]
WINDOW = (TODAY - timedelta(days=45), TODAY + timedelta(days=1))
# A fragment of each ciphertext is searched for: its last bytes (payload and tag).
FRAGMENT = 24


def sealed_under(log: Log, days: set[date]) -> list[bytes]:
    """The stored states of every event of the log sealed under these days' keys."""
    day_keys = DayKeys(log.keys.key_id)
    found = log.recorder.select_notifications(start=1, limit=1_000_000)
    return [n.state for n in found if day_keys.day_of(n.state) in days]


def test_a_day_past_retention_goes_with_its_log_rows(stores: Stores) -> None:
    world = populate(stores.log, OLD + KEPT)
    history = stores.open()
    old_days = {day.date() for day in OLD}
    captured = sealed_under(stores.log, old_days)
    kept = sealed_under(stores.log, {day.date() for day in KEPT})
    events_before = len(stores.log.recorder.select_notifications(start=1, limit=1_000_000))
    cutoff = KEPT[0].date()
    assert history.drop_days_before(cutoff) == 0  # the keys live: nothing may go yet

    stores.log.keys.destroy_days_before(cutoff)
    stores.log.mapper.forget_all()
    assert history.drop_days_before(cutoff) == 2

    remaining = stores.log.recorder.select_notifications(start=1, limit=1_000_000)
    assert len(remaining) == events_before - len(captured)
    assert {n.state for n in remaining}.isdisjoint(captured)
    assert set(kept) <= {n.state for n in remaining}
    rebuilt = stores.rebuild()
    assert stores.dump(history) == stores.dump(rebuilt)
    assert reads_of(history, world, *WINDOW) == reads_of(rebuilt, world, *WINDOW)
    assert any(reads_of(history, world, *WINDOW)["stays_at"])
    assert not any(reads_of(history, world, WINDOW[0], KEPT[0])["stays_at"])
    assert history.drop_days_before(cutoff) == 0
    fragments = [state[-FRAGMENT:] for state in captured]
    if stores.kind == "postgres":
        assert stores.schema is not None
        assert partitions(stores.schema) == partition_names(KEPT)
        assert rows_holding(stores.schema, fragments) == []
        assert rows_holding(stores.schema, [s[-FRAGMENT:] for s in kept]) != []
    else:
        files = [history.path, Path(history.events_path)]
        assert in_files(files, fragments) == []
        assert in_files(files, [s[-FRAGMENT:] for s in kept]) != []


def test_new_events_after_a_drop_are_applied_and_old_days_stay_gone(stores: Stores) -> None:
    world = populate(stores.log, OLD + KEPT[:1])
    history = stores.open()
    stores.log.keys.destroy_days_before(KEPT[0].date())
    stores.log.mapper.forget_all()
    assert history.drop_days_before(KEPT[0].date()) == 2

    populate(stores.log, KEPT[1:], seed=9)
    assert history.catch_up() > 0
    rebuilt = stores.rebuild()
    assert stores.dump(history) == stores.dump(rebuilt)
    assert reads_of(history, world, *WINDOW) == reads_of(rebuilt, world, *WINDOW)
    if stores.kind == "postgres":
        assert stores.schema is not None
        assert partitions(stores.schema) == partition_names(KEPT)


def partition_names(days: list[datetime]) -> set[str]:
    return {f"history_{t}_{d:%Y%m%d}" for d in days for t in ("visits", "log_rows")}


def partitions(schema: str) -> set[str]:
    """The partitions of the history's tables, as the catalog knows them."""
    with psycopg.connect(DATABASE_URL) as db:
        rows = db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND p.relname IN ('history_visits', 'history_log_rows')",
            (schema,),
        ).fetchall()
    return {name for (name,) in rows}


def rows_holding(schema: str, fragments: list[bytes]) -> list[tuple[str, str]]:
    """(table, column) of every bytea or text column of the schema a fragment is found in
    (text columns are searched for its hex and base64 forms)."""
    found: list[tuple[str, str]] = []
    with psycopg.connect(DATABASE_URL) as db:
        columns = db.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND data_type IN ('bytea', 'text', 'character varying')",
            (schema,),
        ).fetchall()
        for table, column, kind in columns:
            if kind == "bytea":
                test = "position(f IN t.{c}) > 0"
            else:
                test = (
                    "(position(encode(f, 'hex') IN t.{c}) > 0"
                    " OR position(encode(f, 'base64') IN t.{c}) > 0)"
                )
            statement = psycopg.sql.SQL(
                "SELECT count(*) FROM {t} AS t, unnest(%s::bytea[]) AS f WHERE " + test
            ).format(t=psycopg.sql.Identifier(schema, table), c=psycopg.sql.Identifier(column))
            count = db.execute(statement, (fragments,)).fetchone()
            if count and count[0]:
                found.append((table, column))
    return found


def heap_bytes(schema: str) -> bytes:
    """The events table's heap file(s), as on disk after a checkpoint."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        db.execute("CHECKPOINT")
        (path,) = db.execute(
            "SELECT pg_relation_filepath(%s::regclass)", (f"{schema}.fangxin_events",)
        ).fetchone() or ("",)
        (content,) = db.execute("SELECT pg_read_binary_file(%s)", (path,)).fetchone() or (b"",)
    return bytes(content)


def in_files(files: list[Path], fragments: list[bytes]) -> list[str]:
    """Which files (with their write-ahead logs) hold any of the fragments."""
    found = []
    for path in files:
        for candidate in (path, path.with_name(path.name + "-wal")):
            if candidate.exists():
                content = candidate.read_bytes()
                if any(f in content for f in fragments):
                    found.append(candidate.name)
    return found


def test_the_logs_last_row_keeps_its_id_taken_until_a_newer_one_exists(stores: Stores) -> None:
    world = populate(stores.log, OLD)
    stores.log.visit(world.people[0], world.venues[0], OLD[0] + timedelta(hours=9))  # last
    history = stores.open()
    captured = sealed_under(stores.log, {day.date() for day in OLD})
    last = stores.log.recorder.max_notification_id() or 0
    assert _state_at(stores.log, last) in captured
    stores.log.keys.destroy_days_before(KEPT[0].date())
    stores.log.mapper.forget_all()
    assert history.drop_days_before(KEPT[0].date()) == 2

    remaining = {n.state for n in stores.log.recorder.select_notifications(1, 1_000_000)}
    # SQLite gives a new event the highest id plus one: deleting the last row would hand its
    # id out again, below every position. It stays until a newer event is written.
    kept = remaining & set(captured)
    assert kept == ({_state_at(stores.log, last)} if stores.kind == "sqlite" else set())
    populate(stores.log, KEPT, seed=5)
    assert history.catch_up() > 0
    history.drop_days_before(KEPT[0].date())

    remaining = {n.state for n in stores.log.recorder.select_notifications(1, 1_000_000)}
    assert remaining.isdisjoint(captured)
    assert (stores.log.recorder.max_notification_id() or 0) > last


def _state_at(log: Log, notification_id: int) -> bytes | None:
    found = log.recorder.select_notifications(start=notification_id, limit=1)
    return found[0].state if found else None
