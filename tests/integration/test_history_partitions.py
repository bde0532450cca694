"""The PostgreSQL history's day partitions: made for the days a batch writes, read only for
the days a query names, and retention's VACUUM FULL leaving no dead tuple of a dropped day."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
from psycopg import sql

from tests.history_log import populate
from tests.history_stores import Stores, history_fixtures
from tests.integration.conftest import DATABASE_URL
from tests.integration.test_history_retention import (
    FRAGMENT,
    KEPT,
    OLD,
    TODAY,
    heap_bytes,
    partition_names,
    partitions,
    sealed_under,
)

stores, log, open_history = history_fixtures(["postgres"])

H = timedelta(hours=1)
DAYS = [TODAY - timedelta(days=3), TODAY - timedelta(days=2), TODAY - timedelta(days=1)]


def test_a_batch_makes_the_partitions_of_its_days(stores: Stores) -> None:
    assert stores.schema is not None
    stores.open()
    assert partitions(stores.schema) == set()

    populate(stores.log, DAYS)
    stores.open()

    assert partitions(stores.schema) == partition_names(DAYS)
    with psycopg.connect(DATABASE_URL) as db:
        (indexes,) = db.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (stores.schema, f"history_visits_{DAYS[1]:%Y%m%d}"),
        ).fetchone() or (0,)
    assert indexes == 4  # (visit, day), (venue, in), (person, in), (guardian, in)


def test_an_upgraded_history_trades_its_narrow_venue_index_for_the_covering_one(
    stores: Stores,
) -> None:
    assert stores.schema is not None
    populate(stores.log, DAYS)
    stores.open()
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        db.execute(
            sql.SQL("DROP INDEX {}").format(
                sql.Identifier(stores.schema, "history_visits_venue_stays_idx")
            )
        )
        db.execute(  # the index an earlier release made
            sql.SQL("CREATE INDEX history_visits_venue_idx ON {} (venue_id, checked_in)").format(
                sql.Identifier(stores.schema, "history_visits")
            )
        )

    stores.open()

    with psycopg.connect(DATABASE_URL) as db:
        found = {
            name
            for (name,) in db.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                (stores.schema, "history_visits"),
            ).fetchall()
        }
    assert "history_visits_venue_stays_idx" in found
    assert "history_visits_venue_idx" not in found


def test_a_stay_lookup_reads_only_the_partitions_of_its_days(stores: Stores) -> None:
    assert stores.schema is not None
    world = populate(stores.log, DAYS)
    history = stores.open()
    middle = DAYS[1]
    _, _, longest = history._reads.freshness()
    assert longest < 12 * 3600  # so the window below reaches back into its own day only
    t0, t1 = middle + timedelta(hours=12), middle + timedelta(hours=14)

    for key, value in (
        ("venue_id", world.venues[0]),
        ("person", history._row_keys.person(world.people[0])),
    ):
        statement, params = history._reads.stays_query(key, value, t0, t1, longest)
        with psycopg.connect(DATABASE_URL) as db:
            plan = "\n".join(
                row[0] for row in db.execute(sql.SQL("EXPLAIN ") + statement, params).fetchall()
            )
        scanned = {day for day in DAYS if f"history_visits_{day:%Y%m%d}" in plan}
        assert scanned == {middle}, plan


def test_a_batched_stay_lookup_reads_only_the_partitions_of_its_windows_days(
    stores: Stores,
) -> None:
    world = populate(stores.log, DAYS)
    history = stores.open()
    middle, last = DAYS[1], DAYS[2]
    _, _, longest = history._reads.freshness()
    assert longest < 12 * 3600  # so the windows below reach back into their own day only
    noon = middle + timedelta(hours=12)
    people = [history._row_keys.person(p) for p in world.people[:2]]

    for key, values in (("venue_id", world.venues[:2]), ("person", people)):
        for windows, days in (
            ([(v, noon, noon + timedelta(hours=2)) for v in values], {middle}),
            (
                [(values[0], noon, noon + timedelta(hours=2)), (values[1], noon, last + H)],
                {middle, last},
            ),
        ):
            statement, params = history._reads.stays_many_query(key, windows, longest)
            with psycopg.connect(DATABASE_URL) as db:
                db.execute("SET enable_seqscan = off")  # tiny tables: ask what it could use
                plan = "\n".join(
                    row[0] for row in db.execute(sql.SQL("EXPLAIN ") + statement, params).fetchall()
                )
            scanned = {day for day in DAYS if f"history_visits_{day:%Y%m%d}" in plan}
            assert scanned == days, plan
            assert f"{key}_checked_in" in plan, plan  # (venue, in) or (person, in)


def test_a_batched_venue_lookup_is_index_only(stores: Stores) -> None:
    """A contacts search reads thousands of venue windows: the venue index holds every column
    of a stay, so on a day VACUUM marked all-visible its lookups read no heap page. (Whether
    this VACUUM can mark them depends on the oldest transaction in the server: the plan is
    asserted, not its heap fetches.)"""
    assert stores.schema is not None
    world = populate(stores.log, DAYS)
    history = stores.open()
    middle = DAYS[1]
    _, _, longest = history._reads.freshness()
    noon = middle + timedelta(hours=12)
    windows = [(v, noon, noon + timedelta(hours=2)) for v in world.venues[:2]]
    statement, params = history._reads.stays_many_query("venue_id", windows, longest)
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        db.execute(sql.SQL("VACUUM {}").format(sql.Identifier(stores.schema, "history_visits")))
        db.execute("SET enable_seqscan = off")  # tiny tables: ask what it could use
        db.execute("SET enable_bitmapscan = off")
        plan = "\n".join(
            row[0]
            for row in db.execute(sql.SQL("EXPLAIN (COSTS OFF) ") + statement, params).fetchall()
        )
    assert f"Index Only Scan using history_visits_{middle:%Y%m%d}_venue_id" in plan, plan


def test_a_guardian_lookup_reads_only_its_days_through_indexes(stores: Stores) -> None:
    world = populate(stores.log, DAYS)
    history = stores.open()
    middle = DAYS[1]
    guardian = history._row_keys.person(world.people[0])
    statement, params = history._reads.visits_query(
        "guardian", guardian, middle, middle + timedelta(hours=23)
    )
    with psycopg.connect(DATABASE_URL) as db:
        db.execute("SET enable_seqscan = off")  # the tables are tiny: ask what it could use
        plan = "\n".join(
            row[0] for row in db.execute(sql.SQL("EXPLAIN ") + statement, params).fetchall()
        )
    assert {day for day in DAYS if f"history_visits_{day:%Y%m%d}" in plan} == {middle}, plan
    assert "person_checked_in_idx" in plan, plan
    assert "guardian_checked_in_idx" in plan, plan


def test_vacuum_full_leaves_no_dead_tuple_of_a_dropped_day_in_the_heap_file(
    stores: Stores,
) -> None:
    assert stores.schema is not None
    populate(stores.log, OLD + KEPT)
    history = stores.open(vacuum_full=True)
    captured = sealed_under(stores.log, {day.date() for day in OLD})
    stores.log.keys.destroy_days_before(KEPT[0].date())
    stores.log.mapper.forget_all()
    assert history.drop_days_before(KEPT[0].date()) == 2

    fragments = [s[-FRAGMENT:] for s in captured]
    heap = heap_bytes(stores.schema)
    # Another session's snapshot older than the delete (this server is shared) keeps the dead
    # tuples "recently dead": VACUUM, FULL or not, must copy them until that snapshot ends.
    deadline = time.monotonic() + 60
    while any(f in heap for f in fragments) and time.monotonic() < deadline:
        time.sleep(0.5)
        with psycopg.connect(DATABASE_URL, autocommit=True) as db:
            db.execute(f"VACUUM (FULL) {stores.schema}.fangxin_events")
        heap = heap_bytes(stores.schema)
    assert [f for f in fragments if f in heap] == []
    assert any(s[-FRAGMENT:] in heap for s in sealed_under(stores.log, {KEPT[0].date()}))
