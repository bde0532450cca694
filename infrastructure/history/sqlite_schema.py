"""The embedded history's tables, in `history.db` in the data folder.

No partitions in SQLite: each visit row carries its UTC day (days since the epoch), and
retention deletes by day with `secure_delete` on, so the freed pages are zeroed. Times are
integer microseconds since the epoch (UTC), so the indexes order them as times. Ids are the
16 bytes of the UUID; person and guardian are keyed pseudonyms, their ids sealed (`sealing`).
The tracking table has eventsourcing's shape (`SQLiteTrackingRecorder`'s), in the same file,
so a batch's rows and its position commit together.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = EPOCH.date()
APPLICATION = "history"

STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS visits ("
    " day INTEGER NOT NULL, visit_id BLOB NOT NULL PRIMARY KEY, venue_id BLOB NOT NULL,"
    " person BLOB NOT NULL, guardian BLOB NOT NULL, checked_in INTEGER NOT NULL,"
    " checked_out INTEGER, dwell_until INTEGER NOT NULL, ends INTEGER NOT NULL,"
    " via TEXT NOT NULL, reason TEXT, people BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS visits_venue ON visits (venue_id, checked_in)",
    "CREATE INDEX IF NOT EXISTS visits_person ON visits (person, checked_in)",
    "CREATE INDEX IF NOT EXISTS visits_guardian ON visits (guardian, checked_in)",
    "CREATE INDEX IF NOT EXISTS visits_day ON visits (day)",
    # The log's streams sealed under each day's key (their ids as the log stores them).
    "CREATE TABLE IF NOT EXISTS log_rows (day INTEGER NOT NULL, originator_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS log_rows_day ON log_rows (day)",
    "CREATE TABLE IF NOT EXISTS exposures ("
    " exposure_id BLOB PRIMARY KEY, venue_id BLOB NOT NULL, starts INTEGER NOT NULL,"
    " ends INTEGER NOT NULL, declared_at INTEGER NOT NULL, sealed BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS exposures_venue ON exposures (venue_id, starts)",
    "CREATE TABLE IF NOT EXISTS venues (venue_id BLOB PRIMARY KEY, max_dwell_minutes INTEGER)",
    "CREATE TABLE IF NOT EXISTS state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), longest_seconds INTEGER NOT NULL,"
    " dropped_before INTEGER)",
    "INSERT OR IGNORE INTO state VALUES (1, 0, NULL)",
    "CREATE TABLE IF NOT EXISTS tracking ("
    " application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name))"
    " WITHOUT ROWID",
)


def micros(at: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=value)


def day_number(day: date) -> int:
    """Days since the epoch."""
    return (day - EPOCH_DAY).days


def from_day_number(value: int) -> date:
    """The date `value` days after the epoch."""
    return EPOCH_DAY + timedelta(days=value)
