"""The key backend contract, run against SQLite and PostgreSQL (each PG test in its own schema).

Without CI the PostgreSQL tests skip when the server is unreachable; with CI set they fail.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import MapperDeserialisationError
from psycopg import sql
from psycopg.conninfo import make_conninfo

from domain.forgetting import Forgotten
from infrastructure.eventstore.mapper import ScopedCipherMapper
from infrastructure.keys.keystore import (
    KeyBackend,
    KeyDestroyedError,
    KeyStore,
    MasterKeys,
    SQLiteKeyBackend,
    UnknownKeyError,
)
from infrastructure.keys.postgres import PARTS, PostgresKeyBackend, ensure_schema
from tests.conftest import CountingBackend
from tests.contracts.conftest import Opened, tables_in
from tests.integration.conftest import DATABASE_URL
from tests.unit.test_mapper import AT, key_id_links, visit_events, visitor_events

Opener = Callable[[], KeyBackend]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def open_backend(request: pytest.FixtureRequest, opened: Opened, tmp_path: Path) -> Opener:
    """Opens backends over one store (one file, or one schema); closed after the test."""
    if request.param == "sqlite":
        return opened.track(lambda: SQLiteKeyBackend(tmp_path / "keys.sqlite3"))
    dsn: str = request.getfixturevalue("schema_dsn")
    return opened.track(lambda: PostgresKeyBackend(dsn, pool_size=2))


@pytest.fixture
def backend(open_backend: Opener) -> KeyBackend:
    return open_backend()


def new_id() -> bytes:
    return secrets.token_bytes(16)


def test_a_stored_key_is_read_back(backend: KeyBackend) -> None:
    key_id = new_id()

    backend.insert_if_absent(key_id, b"wrapped-1", 1)

    assert backend.get(key_id) == (b"wrapped-1", 1)


def test_an_unknown_id_reads_as_none(backend: KeyBackend) -> None:
    assert backend.get(new_id()) is None


def test_insert_if_absent_keeps_the_first_key(backend: KeyBackend) -> None:
    key_id = new_id()
    backend.insert_if_absent(key_id, b"first", 1)

    backend.insert_if_absent(key_id, b"second", 2)

    assert backend.get(key_id) == (b"first", 1)


def test_destroy_tombstones_keys_and_counts_those_that_held_one(backend: KeyBackend) -> None:
    live, other = new_id(), new_id()
    backend.insert_if_absent(live, b"a", 1)
    backend.insert_if_absent(other, b"b", 1)

    destroyed = backend.destroy([live, other])

    assert destroyed == 2
    tombstone = backend.get(live)
    assert tombstone is not None
    assert tombstone[0] is None


def test_destroying_twice_counts_nothing_the_second_time(backend: KeyBackend) -> None:
    key_id = new_id()
    backend.insert_if_absent(key_id, b"a", 1)
    backend.destroy([key_id])

    assert backend.destroy([key_id, key_id]) == 0


def test_destroying_an_unknown_id_leaves_a_tombstone(backend: KeyBackend) -> None:
    key_id = new_id()

    destroyed = backend.destroy([key_id])
    backend.insert_if_absent(key_id, b"too-late", 1)

    assert destroyed == 0
    row = backend.get(key_id)
    assert row is not None
    assert row[0] is None


def test_destroying_nothing_counts_nothing(backend: KeyBackend) -> None:
    assert backend.destroy([]) == 0


def test_stale_lists_live_keys_under_older_versions_in_id_order_from_a_point(
    backend: KeyBackend,
) -> None:
    older = sorted(new_id() for _ in range(3))
    for key_id in older:
        backend.insert_if_absent(key_id, b"old", 1)
    current, shredded = new_id(), new_id()
    backend.insert_if_absent(current, b"current", 2)
    backend.insert_if_absent(shredded, b"shredded", 1)
    backend.destroy([shredded, new_id()])

    first = backend.stale(2, b"", 2)
    rest = backend.stale(2, first[-1][0], 10)

    assert first + rest == [(key_id, b"old", 1) for key_id in older]
    assert backend.versions() == {1: 3, 2: 1}


def test_rewrap_many_replaces_live_keys_still_under_their_previous_version(
    backend: KeyBackend,
) -> None:
    key_id, moved_on = new_id(), new_id()
    backend.insert_if_absent(key_id, b"old", 1)
    backend.insert_if_absent(moved_on, b"already", 3)

    done = backend.rewrap_many([(key_id, b"new", 2, 1), (moved_on, b"stale", 2, 1)])

    assert done == 1
    assert backend.get(key_id) == (b"new", 2)
    assert backend.get(moved_on) == (b"already", 3)


def test_rewrap_many_does_not_revive_a_key_destroyed_after_it_was_read(
    backend: KeyBackend,
) -> None:
    key_id = new_id()
    backend.insert_if_absent(key_id, b"old", 1)
    [read] = backend.stale(2, b"", 10)
    backend.destroy([key_id])

    done = backend.rewrap_many([(read[0], b"new", 2, read[2])])

    assert done == 0
    row = backend.get(key_id)
    assert row is not None
    assert row[0] is None
    assert backend.stale(2, b"", 10) == []


def test_settings_round_trip_and_can_be_replaced(backend: KeyBackend) -> None:
    name = f"setting-{uuid.uuid4().hex}"
    assert backend.get_setting(name) is None

    backend.set_setting(name, "one")
    backend.set_setting(name, "two")

    assert backend.get_setting(name) == "two"


def test_keys_outlive_the_backend_that_wrote_them(open_backend: Opener) -> None:
    key_id = new_id()
    first = open_backend()
    first.insert_if_absent(key_id, b"durable", 1)
    first.set_setting("retention_watermark", "2026-01-01")
    first.close()

    second = open_backend()

    assert second.get(key_id) == (b"durable", 1)
    assert second.get_setting("retention_watermark") == "2026-01-01"


def test_get_many_reads_the_known_keys_and_tombstones_and_leaves_out_unknown_ids(
    backend: KeyBackend,
) -> None:
    first, second, destroyed, unknown = new_id(), new_id(), new_id(), new_id()
    backend.insert_if_absent(first, b"one", 1)
    backend.insert_if_absent(second, b"two", 2)
    backend.insert_if_absent(destroyed, b"three", 1)
    backend.destroy([destroyed])

    found = backend.get_many([first, second, destroyed, unknown])

    assert found == {first: (b"one", 1), second: (b"two", 2), destroyed: backend.get(destroyed)}
    assert found[destroyed][0] is None


def test_a_keystore_loads_many_scopes_in_one_read_then_answers_them_from_memory(
    open_backend: Opener,
) -> None:
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    writer = KeyStore(open_backend(), master)
    stored = [f"visitor:{uuid.uuid4()}" for _ in range(3)]
    keys = [writer.key_for(scope) for scope in stored]
    erased, unknown = f"visitor:{uuid.uuid4()}", f"visitor:{uuid.uuid4()}"
    writer.key_for(erased)
    writer.destroy([erased])
    counting = CountingBackend(open_backend())
    reader = KeyStore(counting, master)  # type: ignore[arg-type]
    counting.reads.clear()  # the service keys it read when it started

    reader.load([*stored, stored[0], erased, unknown])

    assert counting.reads == ["get_many 5"]
    assert [reader.in_memory(scope) for scope in (*stored, erased, unknown)] == [
        True,
        True,
        True,
        True,
        False,
    ]
    assert [reader.key_for(scope) for scope in stored] == keys
    with pytest.raises(KeyDestroyedError):
        reader.key_for(erased)
    assert counting.reads == ["get_many 5"]
    reader.load(stored)
    assert counting.reads == ["get_many 5"]


class HeldBackend(CountingBackend):
    """A backend whose `get_many` waits until the test lets it answer."""

    def __init__(self, inner: KeyBackend) -> None:
        super().__init__(inner)
        self.reading = threading.Event()
        self.answer = threading.Event()

    def get_many(self, key_ids: list[bytes]) -> dict[bytes, tuple[bytes | None, int]]:
        self.reading.set()
        self.answer.wait(timeout=10)
        return super().get_many(key_ids)


def test_a_key_loaded_while_the_cache_is_cleared_is_not_kept_past_the_clearing(
    open_backend: Opener,
) -> None:
    # The feed clears the cache on resubscribing because a destruction may have gone unheard:
    # a key read before the clearing must not land in the cache after it.
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    scope = f"visitor:{uuid.uuid4()}"
    KeyStore(open_backend(), master).key_for(scope)
    held = HeldBackend(open_backend())
    keys = KeyStore(held, master)  # type: ignore[arg-type]
    loading = threading.Thread(target=keys.load, args=([scope],))
    loading.start()
    assert held.reading.wait(timeout=10)
    clearing = threading.Thread(target=keys.forget_all)
    clearing.start()
    clearing.join(timeout=0.2)  # it waits for the load to finish, then clears

    held.answer.set()
    loading.join(timeout=10)
    clearing.join(timeout=10)

    assert not keys.in_memory(scope)


@pytest.mark.integration
def test_a_keystore_over_postgres_gives_one_key_per_scope_and_refuses_a_destroyed_one(
    schema_dsn: str,
) -> None:
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    first_backend = PostgresKeyBackend(schema_dsn, pool_size=2)
    second_backend = PostgresKeyBackend(schema_dsn, pool_size=2)
    try:
        first, second = KeyStore(first_backend, master), KeyStore(second_backend, master)
        scope = f"visitor:{uuid.uuid4()}"

        assert first.key_for(scope) == second.key_for(scope)

        first.destroy([scope])
        third = KeyStore(second_backend, master)
        with pytest.raises(KeyDestroyedError):
            third.key_for(scope)
    finally:
        first_backend.close()
        second_backend.close()


def worker_mapper(open_backend: Opener, master: MasterKeys) -> tuple[KeyStore, ScopedCipherMapper]:
    """A worker's key store and mapper over the shared store."""
    keys = KeyStore(open_backend(), master)
    return keys, ScopedCipherMapper(keys)


def test_an_event_whose_key_id_has_one_flipped_byte_is_refused_not_forgotten(
    open_backend: Opener,
) -> None:
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    _, writer = worker_mapper(open_backend, master)
    _, [registered] = visitor_events()
    stored = writer.to_stored_event(registered)  # type: ignore[arg-type]
    state = bytearray(stored.state)
    state[5] ^= 0x10  # inside the first key id
    _, reader = worker_mapper(open_backend, master)

    with pytest.raises(MapperDeserialisationError, match="never had") as refused:
        reader.to_domain_event(replace(stored, state=bytes(state)))

    assert isinstance(refused.value.__cause__, UnknownKeyError)
    assert isinstance(reader.to_domain_event(stored), type(registered))


def test_events_of_a_visitor_destroyed_by_another_worker_read_as_forgotten(
    open_backend: Opener,
) -> None:
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    writer_keys, writer = worker_mapper(open_backend, master)
    visitor, [registered] = visitor_events()
    stored = [writer.to_stored_event(e) for e in [registered, *visit_events(visitor.id)]]  # type: ignore[list-item]

    writer_keys.destroy_visitor(visitor.id)
    _, reader = worker_mapper(open_backend, master)

    assert all(isinstance(reader.to_domain_event(s), Forgotten) for s in stored)


def test_a_visitors_rows_of_different_days_share_no_key_id_and_all_are_forgotten_after_erasure(
    open_backend: Opener,
) -> None:
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    writer_keys, writer = worker_mapper(open_backend, master)
    visitor, [registered] = visitor_events()
    groups = {"registration": [writer.to_stored_event(registered)]}  # type: ignore[arg-type]
    for days in range(3):
        at = AT + timedelta(days=days)
        events = visit_events(visitor.id, at) + visit_events(visitor.id, at)
        groups[at.date().isoformat()] = [writer.to_stored_event(e) for e in events]  # type: ignore[arg-type]

    for firsts, seconds in itertools.combinations(groups.values(), 2):
        for first, second in itertools.product(firsts, seconds):
            assert key_id_links(first.state, second.state) == set()
    for day, rows in groups.items():
        shared = {writer_keys.key_id(f"day:{day}")}
        for first, second in itertools.combinations(rows, 2):
            assert day == "registration" or key_id_links(first.state, second.state) == shared
    writer_keys.destroy_visitor(visitor.id)
    _, reader = worker_mapper(open_backend, master)
    rows = [row for group in groups.values() for row in group]
    assert all(isinstance(reader.to_domain_event(row), Forgotten) for row in rows)


def test_a_rotation_stopped_halfway_continues_where_it_stopped_and_a_rerun_finds_nothing(
    open_backend: Opener,
) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    writer = KeyStore(open_backend(), MasterKeys({1: old}, 1))
    made = {
        scope: writer.key_for(scope)[1] for scope in (f"visitor:{uuid.uuid4()}" for _ in range(7))
    }
    rotating = KeyStore(open_backend(), MasterKeys({2: new, 1: old}, 2))
    total = sum(rotating.versions().values())
    seen: list[tuple[int, int]] = []

    def stop_after_two_batches(done: int, of: int) -> None:
        seen.append((done, of))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotating.rotate_master(stop_after_two_batches, batch=3)
    assert rotating.versions() == {1: total - 6, 2: 6}
    rest = rotating.rotate_master(batch=3)

    assert seen == [(3, total), (6, total)]
    assert rest == total - 6
    assert rotating.rotate_master() == 0
    retired = KeyStore(open_backend(), MasterKeys({2: new}, 2))
    assert {scope: retired.key_for(scope)[1] for scope in made} == made


@pytest.mark.integration
def test_a_rewrap_waiting_on_a_destruction_in_progress_leaves_the_key_destroyed(
    schema_dsn: str,
) -> None:
    backend = PostgresKeyBackend(schema_dsn, pool_size=2)
    key_id = new_id()
    backend.insert_if_absent(key_id, b"old", 1)
    [read] = backend.stale(2, b"", 10)
    done: list[int] = []
    try:
        with psycopg.connect(schema_dsn) as destroying:
            destroying.execute(  # what `destroy` does, held open
                "UPDATE fangxin_keys SET wrapped = NULL, master_version = 0 WHERE key_id = %s",
                (key_id,),
            )
            rewrap = threading.Thread(
                target=lambda: done.append(backend.rewrap_many([(key_id, b"new", 2, read[2])]))
            )
            rewrap.start()
            rewrap.join(timeout=0.5)
            assert rewrap.is_alive()  # it waits for the row
            destroying.commit()
        rewrap.join(timeout=10)

        assert done == [0]
        assert backend.get(key_id) == (None, 0)
    finally:
        backend.close()


def test_a_destroyed_key_leaves_no_copy_of_its_wrapping_in_the_sqlite_file(
    tmp_path: Path,
) -> None:
    backend = SQLiteKeyBackend(tmp_path / "keys.db")
    keys = KeyStore(backend, MasterKeys({1: secrets.token_bytes(32)}, 1))
    scope = f"visitor:{uuid.uuid4()}"
    keys.key_for(scope)
    wrapped = backend.get(keys.key_id(scope))
    assert wrapped is not None
    assert wrapped[0] is not None
    assert wrapped[0] in (tmp_path / "keys.db").read_bytes()

    keys.destroy([scope])

    leftovers = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert wrapped[0] not in leftovers
    keys.close()


@pytest.mark.integration
def test_keys_kept_before_the_table_was_partitioned_are_moved_with_their_tombstones(
    schema_dsn: str,
) -> None:
    live, destroyed = new_id(), new_id()
    with psycopg.connect(schema_dsn, autocommit=True) as db:
        db.execute(
            "CREATE TABLE fangxin_keys ("
            " key_id bytea PRIMARY KEY, wrapped bytea NULL, master_version int NOT NULL)"
        )
        db.execute("CREATE TABLE fangxin_key_settings (name text PRIMARY KEY, value text)")
        db.execute(
            "INSERT INTO fangxin_keys VALUES (%s, %s, 1), (%s, NULL, 1)",
            (live, b"kept", destroyed),
        )

    backend = PostgresKeyBackend(schema_dsn, pool_size=1)
    try:
        assert backend.get(live) == (b"kept", 1)
        assert backend.get(destroyed) == (None, 0)
        assert backend.versions() == {1: 1}
    finally:
        backend.close()
    with psycopg.connect(schema_dsn) as db:
        kinds = db.execute(
            "SELECT relname, relkind FROM pg_class"
            " WHERE relnamespace = current_schema()::regnamespace"
            " AND relname LIKE 'fangxin_keys%%' AND relkind IN ('r', 'p') ORDER BY relname"
        ).fetchall()
    assert ("fangxin_keys", "p") in kinds
    assert len(kinds) == PARTS + 1


def test_visits_of_days_destroyed_by_retention_read_as_forgotten(open_backend: Opener) -> None:
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    writer_keys, writer = worker_mapper(open_backend, master)
    visitor, _ = visitor_events()
    stored = [writer.to_stored_event(e) for e in visit_events(visitor.id)]  # type: ignore[arg-type]
    never_used = writer_keys.key_id(f"day:{AT.date().replace(day=2).isoformat()}")

    writer_keys.destroy_days_before(AT.date().replace(day=5))
    reader_keys, reader = worker_mapper(open_backend, master)

    assert all(isinstance(reader.to_domain_event(s), Forgotten) for s in stored)
    assert reader_keys.key_by_id(never_used) is None  # a day without visits is tombstoned too


def test_a_key_id_the_store_never_had_is_an_error(open_backend: Opener) -> None:
    keys = KeyStore(open_backend(), MasterKeys({1: secrets.token_bytes(32)}, 1))

    with pytest.raises(UnknownKeyError):
        keys.key_by_id(new_id())


@pytest.mark.integration
def test_ensure_schema_makes_the_tables_in_the_schema_of_the_dsn(
    schema_dsn: str, pg_schema: str
) -> None:
    ensure_schema(schema_dsn)
    ensure_schema(schema_dsn)

    assert sorted(tables_in(schema_dsn, pg_schema)) == sorted(
        ["fangxin_key_compaction", "fangxin_key_settings", "fangxin_keys"]
        + [f"fangxin_keys_{part}" for part in range(PARTS)]
    )


@pytest.mark.integration
def test_the_backend_keeps_synchronous_commit_on_whatever_the_dsn_says(schema_dsn: str) -> None:
    schema = psycopg.conninfo.conninfo_to_dict(schema_dsn)["options"]
    relaxed = make_conninfo(schema_dsn, options=f"{schema} -csynchronous_commit=off")
    backend = PostgresKeyBackend(relaxed, pool_size=1)
    try:
        with backend._pool.connection() as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
    finally:
        backend.close()

    assert row == ("on",)


@contextlib.contextmanager
def worker_role(schema_dsn: str) -> Iterator[str]:
    """A DSN of a role that may read and write the key tables, and own none of them."""
    ensure_schema(schema_dsn)
    schema = psycopg.conninfo.conninfo_to_dict(schema_dsn)["options"].partition("=")[2]
    role = f"keys_test_worker_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            admin.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )
            admin.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )
            yield make_conninfo(schema_dsn, user=role)
        finally:
            admin.execute(
                sql.SQL("DROP OWNED BY {}; DROP ROLE {}").format(
                    sql.Identifier(role), sql.Identifier(role)
                )
            )


@pytest.mark.integration
def test_a_worker_without_ddl_rights_starts_once_the_schema_exists(schema_dsn: str) -> None:
    with worker_role(schema_dsn) as worker_dsn:
        backend = PostgresKeyBackend(worker_dsn, pool_size=1)
        try:
            key_id = new_id()
            backend.insert_if_absent(key_id, b"w", 1)
            assert backend.get(key_id) == (b"w", 1)
        finally:
            backend.close()


@pytest.mark.integration
def test_a_worker_that_cannot_rewrite_the_key_table_says_so_and_leaves_the_mark_for_the_owner(
    schema_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with worker_role(schema_dsn) as worker_dsn:
        worker = PostgresKeyBackend(worker_dsn, pool_size=1)
        try:
            key_id = new_id()
            worker.insert_if_absent(key_id, b"w", 1)
            worker.destroy([key_id])

            with caplog.at_level(logging.WARNING, logger="fangxin.keys"):
                assert worker.compact() == 0
        finally:
            worker.close()
    assert "fangxin keys compact" in caplog.text
    owner = PostgresKeyBackend(schema_dsn, pool_size=1)
    try:
        deadline = time.monotonic() + 30
        while not owner.compact():  # other tests' transactions may be older than the mark
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        owner.close()
