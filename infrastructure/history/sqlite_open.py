"""The embedded history as a start reads it: `SQLiteHistory` and the visits it holds open.

The embedded server keeps the open visits in memory; at start it loads them from here instead
of replaying every check-in of the log (`infrastructure/projections/resume.py`). A partial
index holds the open visits only, so the load reads a few thousand rows, not the retention
period's millions.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from domain.ports import VisitView
from infrastructure.history.sqlite import _VISIT, FILE, SQLiteHistory
from infrastructure.keys.keystore import KeyStore

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


class HistoryFile:
    """The embedded history in the data folder's `history.db`: `fresh` (`fangxin rebuild`)
    deletes the file and opens a new one, `close` closes whichever is open."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        keys: KeyStore,
        data_dir: Path,
        default_max_dwell_minutes: int,
    ) -> None:
        self._open = partial(
            ResumableSQLiteHistory,
            recorder,
            mapper,
            keys,
            data_dir,
            default_max_dwell_minutes=default_max_dwell_minutes,
        )
        self._data_dir = data_dir
        self.current = self._open()

    def fresh(self) -> ResumableSQLiteHistory:
        """The history from an empty file (the server stopped: it would keep the old one)."""
        self.current.close()
        for suffix in ("", "-wal", "-shm"):
            (self._data_dir / f"{FILE}{suffix}").unlink(missing_ok=True)
        self.current = self._open()
        return self.current

    def close(self) -> None:
        """Close the file."""
        self.current.close()
