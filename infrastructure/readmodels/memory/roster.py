"""The in-memory rosters (the embedded deployment), rebuilt from the log at every start."""

from __future__ import annotations

import threading
from collections import defaultdict
from uuid import UUID

from domain.ports import Listed
from infrastructure.readmodels.rosters import RosterEntry


class MemoryRoster:
    """Rosters by (kind, owner), each entry once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lists: dict[tuple[str, UUID | None], dict[UUID, Listed]] = defaultdict(dict)

    def add(self, entry: RosterEntry) -> None:
        """Add an entry (again: no change)."""
        with self._lock:
            self._lists[(entry.kind, entry.owner)].setdefault(entry.entry.id, entry.entry)

    def listed(self, kind: str, owner: UUID | None) -> list[Listed]:
        """Entries of one roster, newest first."""
        with self._lock:
            entries = list(self._lists.get((kind, owner), {}).values())
        return sorted(entries, key=lambda e: (e.at, e.id), reverse=True)
