"""In-memory read models (the embedded deployment), rebuilt from the log at every start."""

from __future__ import annotations

import threading
from collections import defaultdict
from uuid import UUID

from domain.ports import (
    AgencyView,
    Principal,
    VenueView,
    VisitorView,
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
