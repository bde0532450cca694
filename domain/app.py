"""The Fangxin application: the commands and queries of shoppers and merchants."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.answers import Registration, VenueCodes
from domain.errors import (
    ConcurrentChangeError,
    InvalidInputError,
    NotFoundError,
    UnknownRegionError,
)
from domain.people import Merchant, Visitor, VisitorErasedError
from domain.ports import NotStoredError, VenueView, VisitView
from domain.stats import Bucket, StatsVisit, VenueStats, stats_window, venue_stats
from domain.venues import CodeKind, Venue, VenueChanges
from domain.visit_service import VisitCommands
from domain.visits import CheckoutReason, Visit

MAX_VISITS_WINDOW = timedelta(days=93)


class WindowError(InvalidInputError):
    """A time window is empty, reversed or too long."""

    kind = "invalid-window"


class Fangxin(VisitCommands):
    """Commands write aggregates to the log; queries read the read models."""

    # -- visitors and merchants -----------------------------------------------------------

    def register_visitor(
        self, name: str, phone: str, dependents: Sequence[str], idempotency_key: str | None
    ) -> Registration:
        """Register a shopper; every registration is a new pseudonymous visitor."""
        if len(set(dependents)) != len(dependents):
            raise InvalidInputError("dependents must have distinct names")
        visitor_id = self._new_id("visitor", idempotency_key)
        token, token_hash = self.ports.credentials.new_token()
        visitor = Visitor(
            id=visitor_id,
            name=name,
            phone=phone,
            phone_index=self.ports.credentials.phone_index(phone),
            token_hash=token_hash,
            dependent_ids=[self.ports.ids.new() for _ in dependents],
            dependent_names=list(dependents),
            assisted=False,
        )
        self.create(visitor)
        return Registration(id=visitor_id, token=token)

    def register_merchant(
        self, name: str, contact_phone: str, idempotency_key: str | None
    ) -> Registration:
        merchant_id = self._new_id("merchant", idempotency_key)
        token, token_hash = self.ports.credentials.new_token()
        self.create(
            Merchant(id=merchant_id, name=name, contact_phone=contact_phone, token_hash=token_hash)
        )
        return Registration(id=merchant_id, token=token)

    def erase_visitor(self, visitor_id: UUID) -> None:
        """Erase a visitor: record it, then destroy their key (shredding name, phone, visits)."""
        with self.store.exclusive(visitor_id):
            visitor = self._visitor(visitor_id)
            visitor.erase(self.ports.clock.now())
            self.store.commit(visitor)
            self.ports.keys.destroy_visitor(visitor_id)

    def dependent_names(self, visitor_id: UUID) -> dict[UUID, str]:
        """The visitor's dependents' names by id, read from their encrypted registration (the
        read side keeps no names); empty for a visitor without dependents."""
        visitor = self.ports.directory.visitor(visitor_id)
        if visitor is None or not visitor.dependents:
            return {}
        registered = self._visitor(visitor_id)
        return dict(zip(registered.dependent_ids, registered.dependent_names, strict=True))

    def _visitor(self, visitor_id: UUID) -> Visitor:
        try:
            visitor: Visitor = self.store.get(visitor_id)
        except NotStoredError:
            raise NotFoundError("no such visitor") from None
        if visitor.erased or visitor.forgotten:
            raise VisitorErasedError("this visitor's data was erased")
        return visitor

    # -- venues ---------------------------------------------------------------------------

    def register_venue(
        self,
        merchant_id: UUID,
        name: str,
        address: str,
        region: str,
        category: str,
        capacity: int | None,
        max_dwell_minutes: int,
        idempotency_key: str | None,
    ) -> UUID:
        """Register a venue of a merchant (in a county-level region); returns its id."""
        if not self.ports.regions.is_venue_region(region):
            raise UnknownRegionError(
                f"region {region} is not a county-level division on the national list (GB/T 2260)"
            )
        venue_id = self._new_id(f"venue|{merchant_id}", idempotency_key)
        if idempotency_key is not None and self.ports.directory.venue(venue_id) is not None:
            return venue_id
        venue = Venue(
            id=venue_id,
            merchant_id=merchant_id,
            name=name,
            address=address,
            region=region,
            category=category,
            capacity=capacity,
            max_dwell_minutes=max_dwell_minutes,
        )
        # The same key at the same time: one of them made it.
        with contextlib.suppress(ConcurrentChangeError):
            self.store.commit(venue)
        return venue_id

    def venues_of(self, merchant_id: UUID) -> list[VenueView]:
        """A merchant's own venues."""
        return self.ports.directory.venues_of(merchant_id)

    def codes_of(self, venue: VenueView) -> VenueCodes:
        """The current entry and checkout codes of a venue."""
        issue = self.ports.codes.issue
        return VenueCodes(
            code=issue(venue.venue_id, CodeKind.ENTRY, venue.code_version),
            checkout_code=issue(venue.venue_id, CodeKind.CHECKOUT, venue.code_version),
        )

    def rotate_codes(self, merchant_id: UUID, venue_id: UUID) -> VenueView:
        """Replace a venue's codes; the old ones are refused from now on."""
        self.owned_venue(merchant_id, venue_id)
        with self.store.exclusive(venue_id):
            venue: Venue = self.store.get(venue_id)
            venue.rotate_codes()
            self.store.commit(venue)
        return self.owned_venue(merchant_id, venue_id)

    def edit_venue(self, merchant_id: UUID, venue_id: UUID, changes: VenueChanges) -> VenueView:
        """Change an owned venue's details; fields left out keep their value."""
        self.owned_venue(merchant_id, venue_id)
        with self.store.exclusive(venue_id):
            venue: Venue = self.store.get(venue_id)
            changed = venue.edit(
                name=venue.name if changes.name is None else changes.name,
                address=venue.address if changes.address is None else changes.address,
                category=venue.category if changes.category is None else changes.category,
                capacity=venue.capacity if changes.keep_capacity else changes.capacity,
                max_dwell_minutes=changes.max_dwell_minutes or venue.max_dwell_minutes,
            )
            if changed:
                self.store.commit(venue)
        return self.owned_venue(merchant_id, venue_id)

    # -- background duties ----------------------------------------------------------------

    def auto_check_out(self, batch: int = 500) -> int:
        """Close every open visit whose venue's maximum dwell has passed (reason `auto`)."""
        closed = 0
        while True:
            due = self.ports.visits.due(self.ports.clock.now(), batch)
            if not due:
                return closed
            visits: list[Visit] = []
            for view in due:
                venue = self.ports.directory.venue(view.venue_id)
                max_dwell = timedelta(minutes=venue.max_dwell_minutes if venue else 180)
                with self.store.exclusive(view.guardian_id):
                    visit: Visit = self.store.get(view.visit_id)
                    if visit.is_open:
                        visit.check_out(view.checked_in_at + max_dwell, CheckoutReason.AUTO)
                        visits.append(visit)
            try:
                self.store.commit(*visits)
            except ConcurrentChangeError:
                continue  # someone closed one of them meanwhile: look again
            closed += len(visits)
            if len(due) < batch:
                return closed

    def apply_retention(self, retention_days: int) -> int:
        """Shred the days older than the retention period and drop them from the read models."""
        today = self.ports.clock.now().date()
        cutoff_day = today - timedelta(days=retention_days)
        self.ports.keys.destroy_days_before(cutoff_day)
        cutoff = datetime(cutoff_day.year, cutoff_day.month, cutoff_day.day, tzinfo=ZoneInfo("UTC"))
        dropped = self.ports.visits.drop_before(cutoff)
        self.ports.contacts.drop_before(cutoff)
        return dropped

    # -- queries --------------------------------------------------------------------------

    def visits_of(self, visitor_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """A visitor's own visits (with their dependents'), oldest first."""
        if end <= start or end - start > MAX_VISITS_WINDOW:
            raise WindowError("`to` must follow `from`, at most 93 days later")
        return self.ports.visits.of_guardian(visitor_id, start, end)

    def venue_stats(
        self,
        merchant_id: UUID,
        venue_id: UUID,
        start: datetime,
        end: datetime,
        bucket: Bucket,
        tz: ZoneInfo,
    ) -> VenueStats:
        """K-anonymous statistics of an owned venue over whole buckets, never naming a visitor."""
        self.owned_venue(merchant_id, venue_id)
        if end <= start:
            raise WindowError("`to` must follow `from`")
        bounds = stats_window(start, end, bucket, tz)
        visits = [
            StatsVisit(
                visitor_id=v.visitor_id,
                checked_in_at=v.checked_in_at,
                checked_out_at=v.checked_out_at,
                checkout_reason=v.checkout_reason,
            )
            for v in self.ports.visits.at_venue(venue_id, bounds[0], bounds[-1])
        ]
        return venue_stats(visits, bounds, self.ports.clock.now())

    def occupancy(self, merchant_id: UUID, venue_id: UUID) -> tuple[int, int | None]:
        """How many people are in an owned venue now, and its capacity."""
        venue = self.owned_venue(merchant_id, venue_id)
        return self.ports.visits.occupancy(venue_id), venue.capacity
