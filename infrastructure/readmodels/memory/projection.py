"""The memory read models' projection: each event of the log applied to the in-memory views.

With a history (the embedded deployment), only what is hot is in memory: the open visits
(`MemoryOpenVisits`), no stays and no exposures; those the history projects itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.cases import ExposureNotice
from domain.forgetting import Forgotten
from domain.people import Account, Agency, Auditor, Merchant, Officer, Visitor
from domain.ports import ExposureView, VenueView, VisitView
from domain.venues import Venue
from domain.visits import Visit
from infrastructure.readmodels import views
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.roster import MemoryRoster
from infrastructure.readmodels.memory.tracing import MemoryContactIndex, MemoryExposureLog
from infrastructure.readmodels.rosters import new_principal, roster_entry


class VisitSink(Protocol):
    """Where the projection files visits: every visit (`MemoryVisitLog`) or the open ones."""

    def checked_in(self, visit: VisitView, deadline: datetime) -> None: ...

    def checked_out(self, visit_id: UUID, at: datetime, reason: str) -> None: ...

    def forget_guardian(self, guardian_id: UUID) -> None: ...


class ReadModelProjector:
    """Applies one event to the in-memory read models (the embedded deployment)."""

    def __init__(
        self,
        directory: MemoryDirectory,
        visits: VisitSink,
        contacts: MemoryContactIndex | None,
        exposures: MemoryExposureLog | None,
        default_max_dwell_minutes: int = 180,
        roster: MemoryRoster | None = None,
    ) -> None:
        self.directory = directory
        self.roster = roster or MemoryRoster()
        self.visits = visits
        self.contacts = contacts
        self.exposures = exposures
        self._default_max_dwell = default_max_dwell_minutes
        self._exposure_listeners: list[Callable[[ExposureView], None]] = []
        self._handlers: dict[type, Callable[[object], None]] = {
            Agency.Registered: self._agency_registered,  # type: ignore[dict-item]
            Officer.Registered: self._token_registered,  # type: ignore[dict-item]
            Auditor.Registered: self._token_registered,  # type: ignore[dict-item]
            ExposureNotice.Declared: self._exposure_declared,  # type: ignore[dict-item]
            Visitor.Registered: self._visitor_registered,  # type: ignore[dict-item]
            Visitor.Erased: self._visitor_erased,  # type: ignore[dict-item]
            Merchant.Registered: self._token_registered,  # type: ignore[dict-item]
            Venue.Registered: self._venue_registered,  # type: ignore[dict-item]
            Venue.CodeRotated: self._venue_codes_rotated,  # type: ignore[dict-item]
            Venue.Changed: self._venue_changed,  # type: ignore[dict-item]
            Visit.CheckedIn: self._checked_in,  # type: ignore[dict-item]
            Visit.CheckedOut: self._checked_out,  # type: ignore[dict-item]
            Account.TokenRotated: self._token_rotated,  # type: ignore[dict-item]
            Account.Deactivated: self._deactivated,  # type: ignore[dict-item]
        }

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        """Update the read models with one event; forgotten events change nothing."""
        if isinstance(event, Forgotten):
            return
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)
        entry = roster_entry(event)
        if entry is not None:
            self.roster.add(entry)

    def _visitor_registered(self, e: Visitor.Registered) -> None:
        self._token_registered(e)
        self.directory.put_visitor(views.visitor_view(e))

    def on_exposure(self, listener: Callable[[ExposureView], None]) -> None:
        """Call `listener` for every exposure declared from now on (server-sent events)."""
        self._exposure_listeners.append(listener)

    def _agency_registered(self, e: Agency.Registered) -> None:
        self.directory.put_agency(views.agency_view(e))

    def _token_registered(self, e: views.Registered) -> None:
        if e.token_hash:
            self.directory.add_token(e.token_hash, views.principal(e))

    def _token_rotated(self, e: Account.TokenRotated) -> None:
        self.directory.remove_tokens_of(e.originator_id)
        self.directory.add_token(e.token_hash, new_principal(e))

    def _deactivated(self, e: Account.Deactivated) -> None:
        self.directory.remove_tokens_of(e.originator_id)

    def _exposure_declared(self, e: ExposureNotice.Declared) -> None:
        exposure = views.exposure_view(e)
        if self.exposures is not None:
            self.exposures.add(exposure)
        for listener in self._exposure_listeners:
            listener(exposure)

    def _visitor_erased(self, e: Visitor.Erased) -> None:
        visitor = self.directory.visitor(e.originator_id)
        for person in (e.originator_id, *(visitor.dependents.values() if visitor else ())):
            if self.contacts is not None:
                self.contacts.forget_visitor(person)
        self.directory.remove_tokens_of(e.originator_id)
        self.directory.remove_visitor(e.originator_id)
        self.visits.forget_guardian(e.originator_id)

    def _venue_registered(self, e: Venue.Registered) -> None:
        self.directory.put_venue(views.venue_view(e))

    def _venue_codes_rotated(self, e: Venue.CodeRotated) -> None:
        venue = self.directory.venue(e.originator_id)
        if venue is not None:
            self.directory.put_venue(_with_code_version(venue, e.key_version))

    def _venue_changed(self, e: Venue.Changed) -> None:
        venue = self.directory.venue(e.originator_id)
        if venue is not None:
            self.directory.put_venue(_with_code_version(views.venue_view(e), venue.code_version))

    def _checked_in(self, e: Visit.CheckedIn) -> None:
        venue = self.directory.venue(e.venue_id)
        max_dwell = venue.max_dwell_minutes if venue else self._default_max_dwell
        if self.contacts is not None:
            self.contacts.check_in(
                e.originator_id, e.visitor_id, e.venue_id, e.at, timedelta(minutes=max_dwell)
            )
        self.visits.checked_in(views.visit_view(e), deadline=e.at + timedelta(minutes=max_dwell))

    def _checked_out(self, e: Visit.CheckedOut) -> None:
        self.visits.checked_out(e.originator_id, e.at, e.reason)
        if self.contacts is not None:
            self.contacts.check_out(e.originator_id, e.at)


def _with_code_version(venue: VenueView, version: int) -> VenueView:
    from msgspec.structs import replace

    return replace(venue, code_version=version)
