"""The embedded history as a start reads it: `SQLiteHistory` and the visits it holds open.

The embedded server keeps the open visits in memory; at start it loads them from here instead
of replaying every check-in of the log (`infrastructure/projections/resume.py`). A partial
index holds the open visits only, so the load reads a few thousand rows, not the retention
period's millions.
"""

from __future__ import annotations

from pathlib import Path

from domain.ports import VisitView
from infrastructure.history.sqlite import _VISIT, FILE, SQLiteHistory

OPEN_INDEX = (
    "CREATE INDEX IF NOT EXISTS visits_open ON visits (checked_in) WHERE checked_out IS NULL"
)


class ResumableSQLiteHistory(SQLiteHistory):
    """`SQLiteHistory` that also lists the visits still open."""

    def open_visits(self) -> list[VisitView]:
        """Every visit not closed yet, as of the position (no catch-up first: a start calls
        it right after one). The first call makes the index (one scan), later ones use it."""
        self._query(OPEN_INDEX, ())
        rows = self._query(
            f"SELECT {_VISIT} FROM visits WHERE checked_out IS NULL ORDER BY checked_in",  # noqa: S608
            (),
        )
        return [view for view in map(self._visit, rows) if view is not None]


def discard_history(data_dir: Path) -> None:
    """Delete the data folder's history (`fangxin rebuild` makes it again from the log)."""
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"{FILE}{suffix}").unlink(missing_ok=True)
