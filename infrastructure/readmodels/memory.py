"""In-memory read models (the embedded deployment), rebuilt from the log at every start."""

from __future__ import annotations

import bisect
import heapq
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from domain.ports import (
    AgencyView,
    ExposureView,
    Principal,
    Seen,
    VenueView,
    VisitorView,
    VisitView,
)
from infrastructure.readmodels.records import Pseudonyms
from infrastructure.readmodels.views import NewVisitor


class MemoryDirectory:
    """Tokens, visitors and venues in dictionaries; dependents' names only as pseudonyms."""

    def __init__(self, pseudonyms: Pseudonyms | None = None) -> None:
        # Rebuilt at every start: pseudonyms under a key of this process's own will do.
        self._pseudonyms = pseudonyms or Pseudonyms.fresh()
        self._lock = threading.Lock()
        self._tokens: dict[str, Principal] = {}
        self._tokens_of: dict[UUID, set[str]] = defaultdict(set)
        self._venues: dict[UUID, VenueView] = {}
        self._venues_of: dict[UUID, list[UUID]] = defaultdict(list)
        self._visitors: dict[UUID, VisitorView] = {}
        self._by_phone: dict[str, list[UUID]] = defaultdict(list)
        self._guardians: dict[UUID, UUID] = {}
        self._agencies: dict[UUID, AgencyView] = {}

    def principal(self, token_hash: str) -> Principal | None:
        """Whose token this is."""
        return self._tokens.get(token_hash)

    async def principal_async(self, token_hash: str) -> Principal | None:
        """`principal`: memory never blocks."""
        return self._tokens.get(token_hash)

    def venue(self, venue_id: UUID) -> VenueView | None:
        """One venue."""
        return self._venues.get(venue_id)

    def venues_of(self, merchant_id: UUID) -> list[VenueView]:
        """A merchant's venues, oldest first."""
        with self._lock:
            return [self._venues[v] for v in self._venues_of.get(merchant_id, [])]

    def visitor(self, visitor_id: UUID) -> VisitorView | None:
        """One visitor."""
        return self._visitors.get(visitor_id)

    def dependent(self, visitor: VisitorView, name: str) -> UUID | None:
        """The visitor's dependent registered under this name."""
        return visitor.dependents.get(self._pseudonyms.name(visitor.visitor_id, name))

    def visitors_by_phone(self, phone_index: str) -> list[UUID]:
        """Visitors registered with a phone."""
        with self._lock:
            return list(self._by_phone.get(phone_index, []))

    def guardian_of(self, person_id: UUID) -> UUID | None:
        """The registered visitor a person belongs to."""
        return self._guardians.get(person_id)

    def agency(self, agency_id: UUID) -> AgencyView | None:
        """One agency."""
        return self._agencies.get(agency_id)

    def put_agency(self, agency: AgencyView) -> None:
        """Add an agency."""
        self._agencies[agency.agency_id] = agency

    def add_token(self, token_hash: str, principal: Principal) -> None:
        """Remember a token."""
        with self._lock:
            self._tokens[token_hash] = principal
            self._tokens_of[principal.id].add(token_hash)

    def remove_tokens_of(self, principal_id: UUID) -> None:
        """Forget a principal's tokens."""
        with self._lock:
            for token_hash in self._tokens_of.pop(principal_id, set()):
                self._tokens.pop(token_hash, None)

    def put_venue(self, venue: VenueView) -> None:
        """Add or replace a venue."""
        with self._lock:
            if venue.venue_id not in self._venues:
                self._venues_of[venue.merchant_id].append(venue.venue_id)
            self._venues[venue.venue_id] = venue

    def put_visitor(self, registered: NewVisitor) -> None:
        """Add a visitor."""
        visitor = registered.view(self._pseudonyms)
        with self._lock:
            self._visitors[visitor.visitor_id] = visitor
            self._by_phone[visitor.phone_index].append(visitor.visitor_id)
            self._guardians[visitor.visitor_id] = visitor.visitor_id
            for dependent_id in visitor.dependents.values():
                self._guardians[dependent_id] = visitor.visitor_id

    def remove_visitor(self, visitor_id: UUID) -> None:
        """Forget a visitor."""
        with self._lock:
            visitor = self._visitors.pop(visitor_id, None)
            if visitor is not None:
                for person_id in (visitor_id, *visitor.dependents.values()):
                    self._guardians.pop(person_id, None)
                ids = self._by_phone.get(visitor.phone_index, [])
                if visitor_id in ids:
                    ids.remove(visitor_id)


class MemoryVisitLog:
    """Visits by id, by guardian, by venue (sorted by check-in), open ones and their deadlines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._visits: dict[UUID, VisitView] = {}
        # Entries are (time, visit id as an int): tuples of untracked values, which the garbage
        # collector stops tracking, so its pauses do not grow with the number of visits.
        self._by_guardian: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        self._by_venue: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        self._open_of: dict[UUID, set[UUID]] = defaultdict(set)
        self._open_at: dict[UUID, int] = defaultdict(int)
        self._deadlines: list[tuple[datetime, int]] = []

    def get(self, visit_id: UUID) -> VisitView | None:
        """One visit."""
        return self._visits.get(visit_id)

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and dependents that began in [start, end)."""
        with self._lock:
            return self._range(self._by_guardian.get(guardian_id, []), start, end)

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person."""
        with self._lock:
            return [self._visits[v] for v in self._open_of.get(visitor_id, ())]

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people and one visit (memory: nothing to await)."""
        return Seen(
            open_visits={person: self.open_of(person) for person in people},
            visit=None if visit_id is None else self.get(visit_id),
        )

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end)."""
        with self._lock:
            return self._range(self._by_venue.get(venue_id, []), start, end)

    def _range(
        self, index: list[tuple[datetime, int]], start: datetime, end: datetime
    ) -> list[VisitView]:
        low = bisect.bisect_left(index, (start, 0))
        high = bisect.bisect_left(index, (end, 0))
        found = (self._visits.get(UUID(int=v)) for _, v in index[low:high])
        return [visit for visit in found if visit is not None]

    def occupancy(self, venue_id: UUID) -> int:
        """Open visits at a venue."""
        return self._open_at.get(venue_id, 0)

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits past their deadline, earliest first."""
        found: list[VisitView] = []
        with self._lock:
            for deadline, visit_id in heapq.nsmallest(limit * 2 + 16, self._deadlines):
                if deadline > now or len(found) >= limit:
                    break
                visit = self._visits.get(UUID(int=visit_id))
                if visit is not None and visit.checked_out_at is None:
                    found.append(visit)
            # Entries of visits closed meanwhile are dropped lazily.
            while self._deadlines and self._is_stale(self._deadlines[0][1]):
                heapq.heappop(self._deadlines)
        return found

    def _is_stale(self, visit_id: int) -> bool:
        visit = self._visits.get(UUID(int=visit_id))
        return visit is None or visit.checked_out_at is not None

    def checked_in(self, visit: VisitView, deadline: datetime) -> None:
        """Add an open visit."""
        with self._lock:
            if visit.visit_id in self._visits:
                return
            self._visits[visit.visit_id] = visit
            entry = (visit.checked_in_at, visit.visit_id.int)
            _insort(self._by_guardian[visit.guardian_id], entry)
            _insort(self._by_venue[visit.venue_id], entry)
            if visit.checked_out_at is None:
                self._open_of[visit.visitor_id].add(visit.visit_id)
                self._open_at[visit.venue_id] += 1
                heapq.heappush(self._deadlines, (deadline, visit.visit_id.int))

    def checked_out(self, visit_id: UUID, at: datetime, reason: str) -> None:
        """Close a visit."""
        with self._lock:
            visit = self._visits.get(visit_id)
            if visit is None or visit.checked_out_at is not None:
                return
            self._visits[visit_id] = _closed(visit, at, reason)
            self._open_of[visit.visitor_id].discard(visit_id)
            self._open_at[visit.venue_id] -= 1

    def forget_guardian(self, guardian_id: UUID) -> None:
        """Drop every visit of a visitor and their dependents."""
        with self._lock:
            for _, visit_id in self._by_guardian.pop(guardian_id, []):
                self._remove(UUID(int=visit_id))

    def drop_before(self, cutoff: datetime) -> int:
        """Drop visits that began before the cutoff."""
        with self._lock:
            old = [v for v in self._visits.values() if v.checked_in_at < cutoff]
            for visit in old:
                self._remove(visit.visit_id)
            for index in (*self._by_guardian.values(), *self._by_venue.values()):
                del index[: bisect.bisect_left(index, (cutoff, 0))]
            return len(old)

    def _remove(self, visit_id: UUID) -> None:
        visit = self._visits.pop(visit_id, None)
        if visit is not None and visit.checked_out_at is None:
            self._open_of[visit.visitor_id].discard(visit_id)
            self._open_at[visit.venue_id] -= 1


def _closed(visit: VisitView, at: datetime, reason: str) -> VisitView:
    return VisitView(
        visit_id=visit.visit_id,
        visitor_id=visit.visitor_id,
        guardian_id=visit.guardian_id,
        venue_id=visit.venue_id,
        checked_in_at=visit.checked_in_at,
        via=visit.via,
        checked_out_at=at,
        checkout_reason=reason,
    )


class MemoryExposureLog:
    """Declared exposures by venue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_venue: dict[UUID, list[ExposureView]] = defaultdict(list)

    def add(self, exposure: ExposureView) -> None:
        """Remember an exposure."""
        with self._lock:
            known = self._by_venue[exposure.venue_id]
            if all(e.exposure_id != exposure.exposure_id for e in known):
                known.append(exposure)

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures at a venue overlapping [start, end]."""
        with self._lock:
            return [
                e for e in self._by_venue.get(venue_id, []) if e.start <= end and start <= e.end
            ]


class MemoryAnswerStore:
    """Answers in a bounded, expiring dictionary (one process)."""

    def __init__(self, ttl: float = 24 * 3600, max_entries: int = 100_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, str, bytes]] = OrderedDict()

    def load(self, scope: str, key: str) -> tuple[str, bytes] | None:
        """An unexpired answer."""
        with self._lock:
            entry = self._entries.get((scope, key))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    def save(self, scope: str, key: str, fingerprint: str, answer: bytes) -> None:
        """Keep an answer, evicting the oldest past the bound."""
        with self._lock:
            self._entries[(scope, key)] = (time.monotonic() + self._ttl, fingerprint, answer)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


def _insort(entries: list[tuple[datetime, int]], entry: tuple[datetime, int]) -> None:
    """Insert in order. Visits mostly arrive in time order (live, and replayed from the log),
    so the common case is one comparison with the last entry, not a binary search."""
    if not entries or entries[-1] <= entry:
        entries.append(entry)
    else:
        bisect.insort(entries, entry)
