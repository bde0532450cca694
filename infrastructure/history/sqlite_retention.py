"""Retention of the embedded history: a day past retention, and its log rows, deleted with
`secure_delete` on (SQLite zeroes what it frees), then both files' write-ahead logs checkpointed
and truncated, so no copy of the deleted pages stays in them either.

Only a day whose key is destroyed already is deleted (the retention duty destroys the keys
first), so the log's readers see nothing change: those events read as forgotten before, and
are simply not there after. The log (`events.db`) is attached for the step, so the day's
history rows, its log rows and the record of the drop commit in one transaction.

One row is never deleted: the log's last, if it belongs to the day. SQLite gives the next
event the highest id in the table plus one, so deleting the last row would hand its id out
again, below every projection's position: that event would be skipped. It goes with the next
day dropped after a newer event was written (its ciphertext is unreadable meanwhile).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from infrastructure.history.sqlite_schema import day_number, from_day_number
from infrastructure.keys.keystore import KeyStore, UnknownKeyError

LOG = "fangxin_log"


def destroyed(keys: KeyStore, day: date) -> bool:
    """Whether the day's key is destroyed (a day that never had a key sealed nothing)."""
    try:
        return keys.key_by_id(keys.key_id(f"day:{day.isoformat()}")) is None
    except UnknownKeyError:
        return True


def drop_days(
    db: sqlite3.Connection, keys: KeyStore, before: date, events: str | None, table: str
) -> int:
    """Delete the days before `before` whose key is destroyed; how many days went."""
    found = db.execute(
        "SELECT day FROM visits WHERE day < ?1 UNION SELECT day FROM log_rows WHERE day < ?1",
        (day_number(before),),
    ).fetchall()
    days = [from_day_number(row[0]) for row in found]
    gone = [day for day in sorted(days) if destroyed(keys, day)]
    if not gone:
        return 0
    if events is not None:
        db.execute("ATTACH DATABASE ? AS " + LOG, (events,))
        db.execute(f"PRAGMA {LOG}.secure_delete=ON")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            for day in gone:
                _drop(db, day, events is not None, table)
            kept_from = day_number(min(before, max(gone) + timedelta(days=1)))
            db.execute(
                "UPDATE state SET dropped_before = ?1"
                " WHERE dropped_before IS NULL OR dropped_before < ?1",
                (kept_from,),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        db.execute("PRAGMA main.wal_checkpoint(TRUNCATE)")
        if events is not None:
            db.execute(f"PRAGMA {LOG}.wal_checkpoint(TRUNCATE)")
    finally:
        if events is not None:
            db.execute(f"DETACH DATABASE {LOG}")
    return len(gone)


def _drop(db: sqlite3.Connection, day: date, with_log: bool, table: str) -> None:
    number = day_number(day)
    if with_log:
        db.execute(
            f"DELETE FROM {LOG}.{table} WHERE originator_id IN"  # noqa: S608
            " (SELECT originator_id FROM log_rows WHERE day = ?)"
            f" AND rowid < (SELECT max(rowid) FROM {LOG}.{table})",
            (number,),
        )
    db.execute("DELETE FROM visits WHERE day = ?", (number,))
    if with_log:  # the log's last row, if kept, is remembered for a later drop
        db.execute(
            "DELETE FROM log_rows WHERE day = ? AND originator_id NOT IN"  # noqa: S608
            f" (SELECT originator_id FROM {LOG}.{table})",
            (number,),
        )
    else:
        db.execute("DELETE FROM log_rows WHERE day = ?", (number,))
