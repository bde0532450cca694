"""The history in SQLite (the embedded deployment): `history.db` in the data folder.

A start no longer replays the log: the history resumes from its tracking position. Each batch
is ONE transaction (`BEGIN IMMEDIATE`, which also keeps any other writer of the file out):
read the position, read the notifications after it, write their rows and the new position,
commit. A batch killed halfway leaves nothing, and is applied again whole by the next.

Rows hold pseudonymous ids and times only (`sealing`). Retention deletes a day's rows, and
the log's rows sealed under its key, with `secure_delete` on (`sqlite_retention`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from domain.ports import ExposureView, VisitView
from domain.tracing import Stay, Window
from infrastructure.files import private_file
from infrastructure.history.changes import Changes, grouped
from infrastructure.history.log import BATCH, Batch, Follower, head
from infrastructure.history.rows import DayKeys, Rows
from infrastructure.history.sealing import RowKeys
from infrastructure.history.sqlite_retention import drop_days
from infrastructure.history.sqlite_schema import (
    APPLICATION,
    STATEMENTS,
    day_number,
    from_day_number,
    from_micros,
    micros,
)
from infrastructure.keys.keystore import KeyStore

FILE = "history.db"
_VISIT = "visit_id, venue_id, checked_in, checked_out, reason, via, people"


class SQLiteHistory:
    """Visits, stays and exposures in the data folder's `history.db`."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        keys: KeyStore,
        data_dir: Path | str,
        *,
        row_keys: RowKeys | None = None,
        batch: int = BATCH,
        default_max_dwell_minutes: int = 180,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._keys = keys
        self._row_keys = row_keys or RowKeys.of(keys)
        self._batch = batch
        self._default_dwell = default_max_dwell_minutes
        self._day_keys = DayKeys(keys.key_id)
        self.path = private_file(Path(data_dir) / FILE)
        # The log's file, attached when retention deletes its rows (None: a log elsewhere).
        pool = getattr(getattr(recorder, "datastore", None), "pool", None)
        name = getattr(pool, "db_name", None)
        self.events_path = name if name and not getattr(pool, "is_sqlite_memory_mode", 1) else None
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.RLock()
        with self._lock:
            for statement in STATEMENTS:
                self._db.execute(statement)
            # The position after this process's last batch (see `_start`).
            self._applied = -1
            self._follower = Follower(recorder, mapper, self._fresh_rows, batch)

    def _fresh_rows(self) -> Rows:
        """Rows that know every venue's dwell as committed."""
        rows = Rows(self._default_dwell, self._day_keys)
        with self._lock:
            for venue_id, minutes in self._db.execute("SELECT * FROM venues"):
                rows.know_venue(UUID(bytes=venue_id), minutes)
        return rows

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    # -- writing ------------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply every event beyond the tracking position, each exactly once; how many."""
        with self._lock:
            return self._follower.catch_up(self._start, self._apply_batch)

    def _start(self) -> int:
        """Where to read from; another process moved the position since this one's last
        batch, so the venues' dwell it knows may be behind: read back."""
        position = self._tracked()
        if position != self._applied:
            self._follower.rows = self._fresh_rows()
        return position

    def _apply_batch(self, batch: Batch) -> bool:
        """Write the batch, if the position is still where it starts; whether it did."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if self._tracked() != batch.start:
                db.execute("ROLLBACK")
                self._applied = -1
                return False
            dropped = db.execute("SELECT dropped_before FROM state").fetchone()[0]
            if batch.count:
                before = None if dropped is None else from_day_number(dropped)
                longest = 0.0
                for group in grouped(batch.operations, before):
                    longest = max(longest, self._write(group))
                db.execute(
                    "UPDATE state SET longest_seconds = max(longest_seconds, ?)",
                    (int(longest) + 1 if longest else 0,),
                )
                db.execute(
                    "INSERT INTO tracking VALUES (?, ?) ON CONFLICT (application_name)"
                    " DO UPDATE SET notification_id = excluded.notification_id",
                    (APPLICATION, batch.last),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._applied = batch.last
        return True

    def _tracked(self) -> int:
        row = self._db.execute(
            "SELECT notification_id FROM tracking WHERE application_name = ?", (APPLICATION,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _write(self, group: Changes) -> float:
        """Write one group; the longest stay it opened or closed, in seconds."""
        db, keys, longest = self._db, self._row_keys, 0.0
        db.executemany(
            "INSERT INTO venues VALUES (?, ?) ON CONFLICT (venue_id)"
            " DO UPDATE SET max_dwell_minutes = excluded.max_dwell_minutes",
            [(venue_id.bytes, minutes) for venue_id, minutes in group.venues.items()],
        )
        rows = []
        for added in group.visits:
            v = added.visit
            until = micros(v.checked_in_at + timedelta(minutes=added.max_dwell_minutes))
            rows.append(
                (
                    day_number(added.day),
                    v.visit_id.bytes,
                    v.venue_id.bytes,
                    keys.person(v.visitor_id),
                    keys.person(v.guardian_id),
                    micros(v.checked_in_at),
                    until,
                    until,
                    v.via,
                    keys.seal_people(v.visit_id, v.visitor_id, v.guardian_id),
                )
            )
            longest = max(longest, 60.0 * added.max_dwell_minutes)
        db.executemany(
            "INSERT OR IGNORE INTO visits (day, visit_id, venue_id, person, guardian, checked_in,"
            " dwell_until, ends, via, people) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        for closes in group.closes.values():
            for close in closes:
                found = db.execute(
                    "UPDATE visits SET checked_out = ?1, reason = ?2, ends = max(?1, checked_in)"
                    " WHERE visit_id = ?3 AND checked_out IS NULL"
                    " RETURNING ends - checked_in",
                    (micros(close.at), close.reason, close.visit_id.bytes),
                ).fetchone()
                if found is not None:
                    longest = max(longest, found[0] / 1e6)
        for visitor_id in group.erased:
            person = keys.person(visitor_id)
            db.execute("DELETE FROM visits WHERE guardian = ? OR person = ?", (person, person))
        db.executemany(
            "INSERT OR IGNORE INTO exposures VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    e.exposure.exposure_id.bytes,
                    e.exposure.venue_id.bytes,
                    micros(e.exposure.start),
                    micros(e.exposure.end),
                    micros(e.exposure.declared_at),
                    keys.seal_exposure(e.exposure),
                )
                for e in group.exposures
            ],
        )
        db.executemany(
            "INSERT INTO log_rows VALUES (?, ?)",
            [
                (day_number(day), originator_id.hex)
                for day, ids in group.log_rows.items()
                for originator_id in ids
            ],
        )
        return longest

    def position(self) -> int:
        """The last notification id applied."""
        with self._lock:
            return self._tracked()

    # -- reading ------------------------------------------------------------------------------

    def _fresh(self) -> int:
        """Catch up if the log moved past the position; the longest stay, in microseconds."""
        with self._lock:
            if head(self._recorder) > self._tracked():
                self.catch_up()
            return int(self._db.execute("SELECT longest_seconds FROM state").fetchone()[0]) * (
                1_000_000
            )

    def _query(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            return self._db.execute(statement, params).fetchall()

    def visit(self, visit_id: UUID) -> VisitView | None:
        """One visit (open or closed)."""
        self._fresh()
        rows = self._query(f"SELECT {_VISIT} FROM visits WHERE visit_id = ?", (visit_id.bytes,))  # noqa: S608
        return self._visit(rows[0]) if rows else None

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and their dependents that began in [start, end), oldest first."""
        self._fresh()
        return self._visits("guardian", self._row_keys.person(guardian_id), start, end)

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        self._fresh()
        return self._visits("venue_id", venue_id.bytes, start, end)

    def _visits(self, key: str, value: bytes, start: datetime, end: datetime) -> list[VisitView]:
        rows = self._query(
            f"SELECT {_VISIT} FROM visits WHERE {key} = ? AND checked_in >= ?"  # noqa: S608
            " AND checked_in < ? ORDER BY checked_in, visit_id",
            (value, micros(start), micros(end)),
        )
        return [view for view in map(self._visit, rows) if view is not None]

    def _visit(self, row: Any) -> VisitView | None:
        visit_id = UUID(bytes=row[0])
        people = self._row_keys.open_people(visit_id, row[6])
        if people is None:
            return None
        return VisitView(
            visit_id=visit_id,
            visitor_id=people[0],
            guardian_id=people[1],
            venue_id=UUID(bytes=row[1]),
            checked_in_at=from_micros(row[2]),
            via=row[5],
            checked_out_at=None if row[3] is None else from_micros(row[3]),
            checkout_reason=row[4],
        )

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays at a venue intersecting [t0, t1] (open ones end at in + max dwell, or now)."""
        return self._stays("venue_id", venue_id.bytes, t0, t1, now, self._fresh())

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1], sorted by start."""
        person = self._row_keys.person(visitor_id)
        return self._stays("person", person, t0, t1, now, self._fresh())

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_at` of each (venue, t0, t1) window, in their order: one freshness check, then
        a lookup of the index each (in process, no round trip to save)."""
        longest = self._fresh()
        return [self._stays("venue_id", v.bytes, t0, t1, now, longest) for v, t0, t1 in windows]

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_of` of each (visitor, t0, t1) window, in their order (as `stays_at_many`)."""
        longest = self._fresh()
        person = self._row_keys.person
        return [self._stays("person", person(p), t0, t1, now, longest) for p, t0, t1 in windows]

    def _stays(
        self, key: str, value: bytes, t0: datetime, t1: datetime, now: datetime, longest: int
    ) -> list[Stay]:
        rows = self._query(
            "SELECT visit_id, venue_id, checked_in, checked_out, dwell_until, people"  # noqa: S608
            f" FROM visits WHERE {key} = ? AND checked_in BETWEEN ? AND ? AND ends >= ?",
            (value, micros(t0) - longest, micros(t1), micros(t0)),
        )
        found: list[Stay] = []
        for row in rows:
            visit_id = UUID(bytes=row[0])
            people = self._row_keys.open_people(visit_id, row[5])
            if people is None:
                continue
            start = from_micros(row[2])
            if row[3] is not None:
                end = max(from_micros(row[3]), start)
            else:
                end = max(start, min(from_micros(row[4]), now))
            if end >= t0:
                found.append(Stay(visit_id, people[0], UUID(bytes=row[1]), start, end))
        found.sort(key=lambda stay: (stay.start, stay.visit_id))
        return found

    def exposures_at(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures declared at a venue overlapping [start, end]."""
        self._fresh()
        rows = self._query(
            "SELECT exposure_id, starts, ends, declared_at, sealed FROM exposures"
            " WHERE venue_id = ? AND starts <= ? AND ends >= ? ORDER BY declared_at, exposure_id",
            (venue_id.bytes, micros(end), micros(start)),
        )
        found = (
            self._row_keys.open_exposure(
                UUID(bytes=r[0]),
                venue_id,
                (from_micros(r[1]), from_micros(r[2]), from_micros(r[3])),
                r[4],
            )
            for r in rows
        )
        return [exposure for exposure in found if exposure is not None]

    # -- retention ----------------------------------------------------------------------------

    def drop_days_before(self, day: date) -> int:
        """Delete every day before `day` whose key is destroyed, and the log's rows sealed
        under its key; how many days."""
        with self._lock:
            table = getattr(self._recorder, "events_table_name", "stored_events")
            return drop_days(self._db, self._keys, day, self.events_path, table)
