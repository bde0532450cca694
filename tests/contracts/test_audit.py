"""The audit chain: one contract for every store, SQLite in a temp folder and PostgreSQL in a
schema of the test's own.

Each store provides `open_log` (a new log over the same store) and `tamper` (SQL straight into
the store, `?` placeholders), as someone with access to the database would.
"""

from __future__ import annotations

import secrets
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.audit.chain import (
    GENESIS_MAC,
    AuditChainError,
    AuditEntry,
    AuditLog,
    Verification,
)
from infrastructure.audit.checkpoint import (
    CHAIN_BROKEN,
    ENTRIES_MISSING,
    REWRITTEN,
    ChainHead,
    CheckpointCheck,
)
from infrastructure.audit.postgres import PostgresAuditLog
from infrastructure.audit.sqlite import SQLiteAuditLog
from tests.contracts.conftest import Opened, tables_in

KEY = b"a" * 32
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

Opener = Callable[..., AuditLog]
Tamper = Callable[..., None]


def fill(log: AuditLog, count: int, start: int = 0) -> list[AuditEntry]:
    """Append `count` entries a minute apart, each with a unique event_ref."""
    case_id = uuid.uuid4()
    for i in range(start, start + count):
        appended = log.append(
            T0 + timedelta(minutes=i),
            f"officer-{i}",
            "case.trajectory.read",
            case_id,
            f"visitor-{i}",
            f"{case_id}:{i}",
        )
        assert appended
    return log.entries(limit=10_000)


def broken_at(position: int, entries: int) -> Verification:
    return Verification(valid=False, entries=entries, first_bad_position=position)


def rebuild(open_log: Opener, tamper: Tamper, entries: list[AuditEntry]) -> AuditLog:
    """Empty the store and chain `entries` again under the audit key, as a rogue operator
    holding the master key (from which the audit key is unwrapped) can."""
    tamper("DELETE FROM fangxin_audit")
    tamper("UPDATE fangxin_audit_head SET position = 0, mac = ?", GENESIS_MAC)
    log = open_log()
    for e in entries:
        assert log.append(e.at, e.actor, e.action, e.case_id, e.subject, e.event_ref)
    return log


HOLDS = CheckpointCheck(valid=True)


@dataclass
class Store:
    """One audit store: how to open logs over it and edit it behind their back."""

    open_log: Opener
    tamper: Tamper
    # The column of an entry's time, and SQL that moves entry `?`'s time by the least step.
    time_column: str
    shift_time: str

    def forge_after(self, position: int) -> str:
        """SQL that copies entry `position` as a forged entry chained right after it."""
        column = self.time_column
        return (
            f"INSERT INTO fangxin_audit (position, {column}, actor, action, case_id, subject,"
            " event_ref, prev_mac, mac)"
            f" SELECT position + 1, {column}, 'forger', action, case_id, subject,"
            f" 'forged-{position}', mac, ? FROM fangxin_audit WHERE position = {position}"
        )


def sqlite_store(path: Path, opened: Opened) -> Store:
    def tamper(statement: str, *params: object) -> None:
        with closing(sqlite3.connect(path)) as db, db:
            db.execute(statement, params)

    return Store(
        open_log=opened.track(lambda key=KEY: SQLiteAuditLog(path, key)),
        tamper=tamper,
        time_column="at_us",
        shift_time="UPDATE fangxin_audit SET at_us = at_us + 1 WHERE position = ?",
    )


def postgres_store(dsn: str, opened: Opened) -> Store:
    def tamper(statement: str, *params: object) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s").encode(), params)

    return Store(
        open_log=opened.track(lambda key=KEY: PostgresAuditLog(dsn, key)),
        tamper=tamper,
        time_column="at",
        shift_time="UPDATE fangxin_audit SET at = at + interval '1 microsecond' WHERE position = ?",
    )


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "events.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, opened: Opened, sqlite_path: Path) -> Store:
    if request.param == "sqlite":
        return sqlite_store(sqlite_path, opened)
    return postgres_store(request.getfixturevalue("schema_dsn"), opened)


@pytest.fixture
def open_log(store: Store) -> Opener:
    return store.open_log


@pytest.fixture
def tamper(store: Store) -> Tamper:
    return store.tamper


@pytest.fixture
def log(open_log: Opener) -> AuditLog:
    return open_log()


class TestAuditLog:
    """What every audit store must do."""

    def test_an_empty_chain_verifies(self, log: AuditLog) -> None:
        assert log.verify() == Verification(valid=True, entries=0, first_bad_position=None)

    def test_a_fresh_chain_verifies(self, log: AuditLog) -> None:
        fill(log, 5)

        assert log.verify() == Verification(valid=True, entries=5, first_bad_position=None)

    def test_entries_read_back_as_appended_in_utc(self, log: AuditLog) -> None:
        china = timezone(timedelta(hours=8))
        case_id = uuid.uuid4()
        log.append(T0.astimezone(china), "tracer-1", "case.approved", case_id, None, "ref-1")
        log.append(T0 + timedelta(microseconds=7), "admin", "agency.created", None, "x", "ref-2")

        first, second = log.entries()

        assert first == AuditEntry(1, T0, "tracer-1", "case.approved", case_id, None, "ref-1")
        assert first.at.utcoffset() == timedelta(0)
        assert second == AuditEntry(
            2, T0 + timedelta(microseconds=7), "admin", "agency.created", None, "x", "ref-2"
        )

    def test_appending_a_known_event_ref_does_nothing(self, log: AuditLog) -> None:
        fill(log, 2)
        ref = log.entries()[0].event_ref

        appended = log.append(T0, "someone-else", "case.read", None, None, ref)

        assert appended is False
        assert log.has(ref)
        assert not log.has("never-recorded")
        assert len(log.entries()) == 2
        assert log.verify().valid

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("actor", "mallory"),
            ("action", "case.nothing-happened"),
            ("subject", "someone else"),
            ("subject", None),
            ("event_ref", "another-event"),
            ("case_id", str(uuid.UUID(int=1))),
            ("prev_mac", bytes(32)),
            ("mac", bytes(32)),
        ],
    )
    def test_a_field_edited_in_the_store_is_detected_at_its_position(
        self, log: AuditLog, tamper: Tamper, column: str, value: object
    ) -> None:
        fill(log, 5)

        tamper(f"UPDATE fangxin_audit SET {column} = ? WHERE position = 3", value)

        assert log.verify() == broken_at(3, 5)

    def test_a_time_edited_in_the_store_is_detected_at_its_position(
        self, store: Store, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)

        tamper(store.shift_time, 4)

        assert log.verify() == broken_at(4, 5)

    def test_an_edit_to_the_first_entry_is_detected(self, log: AuditLog, tamper: Tamper) -> None:
        fill(log, 3)

        tamper("UPDATE fangxin_audit SET actor = ? WHERE position = 1", "mallory")

        assert log.verify() == broken_at(1, 3)

    def test_a_deleted_middle_entry_is_detected(self, log: AuditLog, tamper: Tamper) -> None:
        fill(log, 5)

        tamper("DELETE FROM fangxin_audit WHERE position = 3")

        assert log.verify() == broken_at(3, 4)

    def test_a_deleted_entry_with_the_rest_renumbered_is_detected(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)

        tamper("DELETE FROM fangxin_audit WHERE position = 3")
        tamper("UPDATE fangxin_audit SET position = -(position - 1) WHERE position > 3")
        tamper("UPDATE fangxin_audit SET position = -position WHERE position < 0")
        tamper(
            "UPDATE fangxin_audit_head SET position = 4,"
            " mac = (SELECT mac FROM fangxin_audit WHERE position = 4)"
        )

        assert log.verify() == broken_at(3, 4)

    def test_a_deleted_last_entry_is_detected_by_the_head(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)

        tamper("DELETE FROM fangxin_audit WHERE position = 5")

        assert log.verify() == broken_at(5, 4)

    def test_deleting_every_entry_is_detected_by_the_head(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 3)

        tamper("DELETE FROM fangxin_audit")

        assert log.verify() == broken_at(1, 0)

    def test_two_swapped_entries_are_detected(self, log: AuditLog, tamper: Tamper) -> None:
        fill(log, 5)

        tamper("UPDATE fangxin_audit SET position = -1 WHERE position = 2")
        tamper("UPDATE fangxin_audit SET position = 2 WHERE position = 3")
        tamper("UPDATE fangxin_audit SET position = 3 WHERE position = -1")

        assert log.verify() == broken_at(2, 5)

    def test_a_forged_entry_inserted_in_the_middle_is_detected(
        self, store: Store, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)

        tamper("UPDATE fangxin_audit SET position = -(position + 1) WHERE position >= 3")
        tamper("UPDATE fangxin_audit SET position = -position WHERE position < 0")
        tamper(store.forge_after(2), secrets.token_bytes(32))
        tamper(
            "UPDATE fangxin_audit_head SET position = 6,"
            " mac = (SELECT mac FROM fangxin_audit WHERE position = 6)"
        )

        assert log.verify() == broken_at(3, 6)

    def test_a_forged_entry_appended_with_a_matching_head_is_detected(
        self, store: Store, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)
        forged_mac = secrets.token_bytes(32)

        tamper(store.forge_after(5), forged_mac)
        tamper("UPDATE fangxin_audit_head SET position = 6, mac = ?", forged_mac)

        assert log.verify() == broken_at(6, 6)

    def test_a_head_moved_back_is_detected(self, log: AuditLog, tamper: Tamper) -> None:
        fill(log, 5)

        tamper(
            "UPDATE fangxin_audit_head SET position = 3,"
            " mac = (SELECT mac FROM fangxin_audit WHERE position = 3)"
        )

        assert log.verify() == broken_at(4, 5)

    def test_a_chain_under_another_key_does_not_verify(
        self, open_log: Opener, log: AuditLog
    ) -> None:
        fill(log, 3)

        assert open_log(b"b" * 32).verify() == broken_at(1, 3)

    def test_a_reopened_chain_still_verifies_and_continues(self, open_log: Opener) -> None:
        first = open_log()
        fill(first, 3)
        first.close()

        again = open_log()
        assert again.verify() == Verification(valid=True, entries=3, first_bad_position=None)
        fill(again, 2, start=3)

        assert [entry.position for entry in again.entries()] == [1, 2, 3, 4, 5]
        assert again.verify() == Verification(valid=True, entries=5, first_bad_position=None)

    def test_entries_are_filtered_by_time_start_included_end_excluded(self, log: AuditLog) -> None:
        fill(log, 5)

        def positions(start: datetime | None, end: datetime | None) -> list[int]:
            return [entry.position for entry in log.entries(start, end)]

        assert positions(T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)) == [2, 3]
        assert positions(T0 + timedelta(minutes=3), None) == [4, 5]
        assert positions(None, T0 + timedelta(minutes=1)) == [1]
        assert positions(T0 + timedelta(days=1), None) == []

    def test_entries_are_limited_to_the_oldest(self, log: AuditLog) -> None:
        fill(log, 5)

        assert [entry.position for entry in log.entries(limit=2)] == [1, 2]

    def test_a_time_without_a_zone_is_refused(self, log: AuditLog) -> None:
        with pytest.raises(ValueError, match="timezone"):
            log.append(datetime(2024, 3, 1, 8), "tracer", "case.read", None, None, "ref")

    def test_appends_stop_when_the_head_disagrees_with_the_last_entry(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 3)
        tamper("DELETE FROM fangxin_audit WHERE position = 3")

        with pytest.raises(AuditChainError):
            log.append(T0, "tracer", "case.read", None, None, "after-tampering")

    def test_concurrent_appends_from_two_logs_form_one_chain(self, open_log: Opener) -> None:
        logs = [open_log(), open_log()]
        errors: list[BaseException] = []

        def work(log: AuditLog, worker: int) -> None:
            try:
                for i in range(15):
                    log.append(T0, f"worker-{worker}", "case.read", None, None, f"w{worker}:{i}")
            except BaseException as error:  # a thread's failure must reach the test
                errors.append(error)

        threads = [threading.Thread(target=work, args=(logs[n % 2], n)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert [entry.position for entry in logs[0].entries()] == list(range(1, 61))
        assert logs[1].verify() == Verification(valid=True, entries=60, first_bad_position=None)

    def test_one_event_appended_concurrently_is_recorded_once(self, open_log: Opener) -> None:
        logs = [open_log(), open_log()]
        results: list[bool] = []
        barrier = threading.Barrier(6)

        def work(log: AuditLog) -> None:
            barrier.wait()
            results.append(log.append(T0, "tracer", "case.read", None, None, "the-event"))

        threads = [threading.Thread(target=work, args=(logs[n % 2],)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(results) == [False] * 5 + [True]
        assert logs[0].verify() == Verification(valid=True, entries=1, first_bad_position=None)

    def test_the_head_is_the_last_position_and_its_mac(self, log: AuditLog) -> None:
        assert log.head() == ChainHead(entries=0, mac=GENESIS_MAC)
        fill(log, 3)

        head = log.head()
        fill(log, 1, start=3)

        assert head.entries == 3
        assert len(head.mac) == 32
        assert log.head().entries == 4
        assert log.head().mac not in (head.mac, GENESIS_MAC)
        assert log.verify(head).checkpoint == HOLDS

    def test_no_head_is_given_while_the_head_disagrees_with_the_last_entry(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 3)
        tamper("DELETE FROM fangxin_audit WHERE position = 3")

        with pytest.raises(AuditChainError):
            log.head()

    def test_a_checkpoint_holds_while_entries_are_appended_after_it(self, log: AuditLog) -> None:
        fill(log, 4)
        checkpoint = log.head()

        fill(log, 3, start=4)

        assert log.verify(checkpoint) == Verification(
            valid=True, entries=7, first_bad_position=None, checkpoint=HOLDS
        )

    def test_entries_cut_off_the_end_with_the_head_moved_back_break_the_checkpoint(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)
        checkpoint = log.head()

        tamper("DELETE FROM fangxin_audit WHERE position > 3")
        tamper(
            "UPDATE fangxin_audit_head SET position = 3,"
            " mac = (SELECT mac FROM fangxin_audit WHERE position = 3)"
        )

        assert log.verify(checkpoint) == Verification(
            valid=True,
            entries=3,
            first_bad_position=None,
            checkpoint=CheckpointCheck(valid=False, reason=ENTRIES_MISSING),
        )

    def test_a_trail_rebuilt_shorter_under_the_audit_key_breaks_the_checkpoint(
        self, open_log: Opener, log: AuditLog, tamper: Tamper
    ) -> None:
        entries = fill(log, 6)
        checkpoint = log.head()
        kept = [e for e in entries if e.actor != "officer-2"]

        rebuilt = rebuild(open_log, tamper, kept)

        assert rebuilt.verify(checkpoint) == Verification(
            valid=True,
            entries=5,
            first_bad_position=None,
            checkpoint=CheckpointCheck(valid=False, reason=ENTRIES_MISSING),
        )

    def test_a_trail_rebuilt_edited_to_its_old_length_under_the_audit_key_breaks_the_checkpoint(
        self, open_log: Opener, log: AuditLog, tamper: Tamper
    ) -> None:
        entries = fill(log, 5)
        checkpoint = log.head()
        edited = msgspec.structs.replace(entries[1], actor="nobody")

        rebuilt = rebuild(open_log, tamper, [entries[0], edited, *entries[2:]])

        assert rebuilt.verify(checkpoint) == Verification(
            valid=True,
            entries=5,
            first_bad_position=None,
            checkpoint=CheckpointCheck(valid=False, reason=REWRITTEN),
        )

    def test_an_entry_altered_before_the_checkpoint_breaks_it(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)
        checkpoint = log.head()
        fill(log, 2, start=5)

        tamper("UPDATE fangxin_audit SET actor = ? WHERE position = 2", "mallory")

        assert log.verify(checkpoint) == Verification(
            valid=False,
            entries=7,
            first_bad_position=2,
            checkpoint=CheckpointCheck(valid=False, reason=CHAIN_BROKEN),
        )

    def test_entries_reordered_before_the_checkpoint_break_it(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 5)
        checkpoint = log.head()

        tamper("UPDATE fangxin_audit SET position = -1 WHERE position = 2")
        tamper("UPDATE fangxin_audit SET position = 2 WHERE position = 3")
        tamper("UPDATE fangxin_audit SET position = 3 WHERE position = -1")

        assert log.verify(checkpoint).checkpoint == CheckpointCheck(False, CHAIN_BROKEN)

    def test_an_entry_altered_after_the_checkpoint_breaks_the_chain_but_not_the_checkpoint(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 3)
        checkpoint = log.head()
        fill(log, 2, start=3)

        tamper("UPDATE fangxin_audit SET actor = ? WHERE position = 4", "mallory")

        assert log.verify(checkpoint) == Verification(
            valid=False, entries=5, first_bad_position=4, checkpoint=HOLDS
        )

    def test_a_checkpoint_of_another_chain_does_not_hold(self, log: AuditLog) -> None:
        fill(log, 3)

        assert log.verify(ChainHead(2, bytes(32))).checkpoint == CheckpointCheck(False, REWRITTEN)
        assert log.verify(ChainHead(4, bytes(32))).checkpoint == CheckpointCheck(
            False, ENTRIES_MISSING
        )

    def test_a_checkpoint_of_the_empty_chain_holds_for_any_chain(self, log: AuditLog) -> None:
        checkpoint = log.head()

        fill(log, 2)

        assert log.verify(checkpoint).checkpoint == HOLDS


class TestSQLiteAuditLog:
    """What only SQLite's loose column types let someone with the file do."""

    @pytest.fixture
    def store(self, opened: Opened, sqlite_path: Path) -> Store:
        return sqlite_store(sqlite_path, opened)

    def test_text_that_is_not_utf8_is_detected_not_raised(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 3)

        tamper("UPDATE fangxin_audit SET actor = CAST(x'ff' AS TEXT) WHERE position = 2")

        assert log.verify() == broken_at(2, 3)

    def test_no_head_is_given_for_a_last_mac_edited_into_text_that_is_not_utf8(
        self, log: AuditLog, tamper: Tamper
    ) -> None:
        fill(log, 3)

        tamper("UPDATE fangxin_audit SET mac = CAST(x'ff' AS TEXT) WHERE position = 3")
        tamper("UPDATE fangxin_audit_head SET mac = CAST(x'ff' AS TEXT)")

        with pytest.raises(AuditChainError, match="malformed"):
            log.head()

    def test_a_blob_in_a_text_column_is_detected(self, log: AuditLog, tamper: Tamper) -> None:
        log.append(T0, "tracer", "case.read", None, "YWJj", "ref-1")

        # The bytes of "abc", which a JSON encoder would write as the base64 text "YWJj".
        tamper("UPDATE fangxin_audit SET subject = x'616263' WHERE position = 1")

        assert log.verify() == broken_at(1, 1)

    def test_a_key_of_the_wrong_length_is_refused(self, sqlite_path: Path) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            SQLiteAuditLog(sqlite_path, b"short")


def test_the_event_store_file_keeps_its_tables_and_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        with db:
            db.execute("CREATE TABLE stored_events (id INTEGER PRIMARY KEY, state BLOB)")
            db.execute("INSERT INTO stored_events VALUES (1, x'00')")

    log = SQLiteAuditLog(path, KEY)
    fill(log, 2)
    log.close()

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT id, state FROM stored_events").fetchall() == [(1, b"\x00")]


def test_a_rollback_journal_file_is_switched_to_wal(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"

    SQLiteAuditLog(path, KEY).close()

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
times = st.datetimes(timezones=st.just(UTC))
appends = st.tuples(times, texts, texts, st.none() | st.uuids(), st.none() | texts)


@settings(max_examples=40, deadline=None)
@given(st.lists(appends, min_size=1, max_size=8))
def test_any_entries_read_back_exactly_and_verify(
    rows: list[tuple[datetime, str, str, uuid.UUID | None, str | None]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = SQLiteAuditLog(Path(folder) / "audit.db", KEY)
        try:
            for n, (at, actor, action, case_id, subject) in enumerate(rows):
                assert log.append(at, actor, action, case_id, subject, f"ref-{n}")

            expected = [
                AuditEntry(n + 1, at, actor, action, case_id, subject, f"ref-{n}")
                for n, (at, actor, action, case_id, subject) in enumerate(rows)
            ]
            assert log.entries() == expected
            assert log.verify() == Verification(
                valid=True, entries=len(rows), first_bad_position=None
            )
        finally:
            log.close()


@pytest.mark.integration
def test_the_postgres_tables_are_made_in_the_schema_of_the_dsn(
    opened: Opened, schema_dsn: str, pg_schema: str
) -> None:
    postgres_store(schema_dsn, opened).open_log()

    assert tables_in(schema_dsn, pg_schema) == ["fangxin_audit", "fangxin_audit_head"]
