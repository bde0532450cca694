"""Reading case data: the index person's trajectory, their close contacts, how to reach one."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import msgspec

from domain.case_access import CaseAccess
from domain.cases import Case, in_jurisdiction
from domain.errors import GoneError, InvalidInputError
from domain.people import Visitor
from domain.ports import NotStoredError, Principal, VenueView, VisitView
from domain.tracing import Contact, ContactRule, Stay, Window, close_contacts

MAX_DEPTH = 2


class ContactErasedError(GoneError):
    """The contact erased their data: nothing can be told about them."""

    kind = "contact-erased"


class TrajectoryVisit(msgspec.Struct, frozen=True):
    """One visit of an index person, with its venue."""

    visit: VisitView
    venue: VenueView


class Trajectory(msgspec.Struct, frozen=True):
    """An index person's visits inside the jurisdiction, and how many fell outside."""

    visits: list[TrajectoryVisit]
    outside_jurisdiction: int


class ContactDetails(msgspec.Struct, frozen=True):
    """How to reach a contact (a dependent is reached through their guardian's phone)."""

    name: str
    phone: str


class CaseReads(CaseAccess):
    """What an officer may read of a case; each read is recorded before it is answered."""

    def trajectory(self, officer: Principal, case_id: UUID) -> Trajectory:
        """The index person's visits in the window, oldest first, inside the jurisdiction."""
        case = self.case(officer, case_id)
        case.record_access(officer.id, "read trajectory", self.ports.clock.now())
        self._save(case)
        self._record_event(case, officer.id, "read trajectory")
        return self._trajectory(case)

    def _trajectory(self, case: Case) -> Trajectory:
        jurisdiction = self._agency(case).jurisdiction
        now = self.ports.clock.now()
        visits: list[TrajectoryVisit] = []
        outside = 0
        for stay in self._index_stays(case, now, jurisdiction=None):
            visit = self.ports.visits.get(stay.visit_id)
            venue = self.ports.directory.venue(stay.venue_id)
            if visit is None or venue is None:
                continue
            if in_jurisdiction(jurisdiction, venue.region):
                visits.append(TrajectoryVisit(visit=visit, venue=venue))
            else:
                outside += 1
        visits.sort(key=lambda v: (v.visit.checked_in_at, v.visit.visit_id))
        return Trajectory(visits=visits, outside_jurisdiction=outside)

    def contacts(
        self, officer: Principal, case_id: UUID, rule: ContactRule, depth: int
    ) -> list[Contact]:
        """Close contacts of the index person, only at venues inside the jurisdiction."""
        case = self.case(officer, case_id)
        case.require_readable(self.ports.clock.now())
        found = self._contacts(case, rule, depth)
        case.record_access(
            officer.id,
            "read contacts",
            self.ports.clock.now(),
            subject=f"depth={depth}",
            listed=[c.visitor_id for c in found],
        )
        self._save(case)
        self._record_event(case, officer.id, "read contacts", subject=f"depth={depth}")
        return found

    def _contacts(self, case: Case, rule: ContactRule, depth: int) -> list[Contact]:
        if depth not in (1, MAX_DEPTH):
            raise InvalidInputError("depth is 1 or 2")
        jurisdiction = self._agency(case).jurisdiction
        now = self.ports.clock.now()
        index = self.ports.contacts

        def inside(venue_id: UUID) -> bool:
            return self._inside(venue_id, jurisdiction)

        def stays_at_many(windows: Sequence[Window]) -> list[list[Stay]]:
            # Venues outside the jurisdiction are not asked about: they have no stays here.
            asked = [window for window in windows if inside(window[0])]
            found = iter(index.stays_at_many(asked, now) if asked else [])
            return [next(found) if inside(window[0]) else [] for window in windows]

        def stays_of_many(windows: Sequence[Window]) -> list[list[Stay]]:
            return [
                [s for s in stays if inside(s.venue_id)]
                for stays in index.stays_of_many(windows, now)
            ]

        return close_contacts(
            self._index_stays(case, now, jurisdiction),
            frozenset(case.index_ids),
            rule,
            depth,
            stays_at_many=stays_at_many,
            stays_of_many=stays_of_many,
            # Contacts of contacts only inside the case's window: a case is no live tracking.
            until=min(now, case.end + rule.after),
        )

    def details(self, officer: Principal, case_id: UUID, visitor_id: UUID) -> ContactDetails:
        """Name and phone of a contact this case listed; an erased contact is gone (410)."""
        case = self.case(officer, case_id)
        case.require_readable(self.ports.clock.now())
        case.check_listed(visitor_id)
        return self._reveal(case, officer, visitor_id)

    def _reveal(self, case: Case, officer: Principal, visitor_id: UUID) -> ContactDetails:
        """Record the reveal (on the case, then in the trail), then read the contact."""
        case.record_access(
            officer.id, "reveal contact details", self.ports.clock.now(), subject=str(visitor_id)
        )
        self._save(case)
        self._record_event(case, officer.id, "reveal contact details", subject=str(visitor_id))
        guardian_id = self.ports.directory.guardian_of(visitor_id)
        if guardian_id is None:
            raise ContactErasedError("this contact erased their data")
        try:
            guardian: Visitor = self.store.get(guardian_id)
        except NotStoredError:
            raise ContactErasedError("this contact erased their data") from None
        if guardian.erased or guardian.forgotten:
            raise ContactErasedError("this contact erased their data")
        if visitor_id == guardian_id:
            return ContactDetails(name=guardian.name, phone=guardian.phone)
        index = guardian.dependent_ids.index(visitor_id)
        return ContactDetails(name=guardian.dependent_names[index], phone=guardian.phone)

    def export(
        self, officer: Principal, case_id: UUID, rule: ContactRule, depth: int, details: bool
    ) -> CaseExport:
        """Trajectory and contacts together as one recorded read; with `details`, each
        contact's name and phone too, each reveal recorded as a details call is."""
        case = self.case(officer, case_id)
        case.require_readable(self.ports.clock.now())
        contacts = self._contacts(case, rule, depth)
        case.record_access(
            officer.id,
            "export",
            self.ports.clock.now(),
            subject=f"depth={depth}",
            listed=[c.visitor_id for c in contacts],
        )
        self._save(case)
        shown = "with details" if details else "without details"
        self._record_event(case, officer.id, "export", subject=f"depth={depth} {shown}")
        revealed: dict[UUID, ContactDetails | None] = {}
        if details:
            for contact in contacts:
                try:
                    revealed[contact.visitor_id] = self._reveal(case, officer, contact.visitor_id)
                except ContactErasedError:
                    revealed[contact.visitor_id] = None
        return CaseExport(trajectory=self._trajectory(case), contacts=contacts, details=revealed)


class CaseExport(msgspec.Struct, frozen=True):
    """What an export holds: with details, a contact's (None: erased) by visitor id."""

    trajectory: Trajectory
    contacts: list[Contact]
    details: dict[UUID, ContactDetails | None]
