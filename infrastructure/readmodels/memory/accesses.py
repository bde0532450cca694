"""In-memory read model of the case reads that concerned each person."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID

from domain.outreach_ports import AccessView


class MemoryAccessIndex:
    """Reads by case (those concerning its index people) and by listed or revealed person."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cases_of: dict[UUID, set[UUID]] = defaultdict(set)
        self._case_reads: dict[UUID, list[AccessView]] = defaultdict(list)
        self._person_reads: dict[UUID, list[AccessView]] = defaultdict(list)

    def opened(self, case_id: UUID, index_ids: Sequence[UUID]) -> None:
        """A case was opened on these index people."""
        with self._lock:
            for person in index_ids:
                self._cases_of[person].add(case_id)

    def read(self, access: AccessView, of_index: bool, people: Sequence[UUID]) -> None:
        """A recorded read, concerning the case's index people (or not) and these people."""
        with self._lock:
            if of_index:
                self._case_reads[access.case_id].append(access)
            for person in people:
                self._person_reads[person].append(access)

    def forget(self, people: Sequence[UUID]) -> None:
        """Drop what links these people to cases (erasure)."""
        with self._lock:
            for person in people:
                self._cases_of.pop(person, None)
                self._person_reads.pop(person, None)

    def of_people(self, people: Sequence[UUID]) -> list[AccessView]:
        """Reads concerning any of these people, oldest first, each once."""
        found: dict[tuple[UUID, int], AccessView] = {}
        with self._lock:
            for person in people:
                for case_id in self._cases_of.get(person, ()):
                    for access in self._case_reads.get(case_id, ()):
                        found[(access.case_id, access.version)] = access
                for access in self._person_reads.get(person, ()):
                    found[(access.case_id, access.version)] = access
        return sorted(found.values(), key=lambda a: (a.at, a.case_id, a.version))
