"""Health authorities' work: agencies, officers, cases, tracing, exposures.

Every read of case data is recorded on the case (an event in the log) and in the audit trail,
its own append-only store, before it is answered; every admin action is recorded in the trail
before it is done. When the trail refuses an entry, nothing is shown and nothing is done.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.app import Fangxin
from domain.cases import Case, CasePolicy, CaseStatus, ExposureNotice, in_jurisdiction
from domain.commands import Registration, derive_id
from domain.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidInputError,
    NotFoundError,
    UnknownRegionError,
)
from domain.people import Agency, Auditor, Officer, OfficerRole, Visitor
from domain.ports import (
    AgencyView,
    AuditRecord,
    AuditTrail,
    ExposureView,
    Principal,
    VenueView,
    VisitView,
)
from domain.tracing import Contact, ContactRule, Stay, close_contacts

MAX_DEPTH = 2
# The audit trail's actor for the platform admin, who has one token and no account id.
ADMIN_ACTOR = "platform-admin"
# What an exposure declared from a case may cover around the index person's visit.
EXPOSURE_RULE = ContactRule()


class ContactErasedError(GoneError):
    """The contact erased their data: nothing can be told about them."""

    kind = "contact-erased"


class ExposureWindowError(InvalidInputError):
    """An exposure window is reversed or longer than the case allows."""

    kind = "invalid-exposure-window"


class ExposureOffTrajectoryError(ConflictError):
    """An exposure must lie within a visit of the case's index person at that venue."""

    kind = "exposure-off-trajectory"


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


class Casework:
    """Commands and queries of agencies, officers and auditors."""

    def __init__(self, app: Fangxin, audit: AuditTrail, policy: CasePolicy | None = None) -> None:
        self.app = app
        self.ports = app.ports
        self.audit = audit
        self.policy = policy or CasePolicy()

    def _require_on_record(self, officer: Principal) -> None:
        """Refuse an officer whose creation is not in the audit trail.

        Whoever can write the event log (and holds the master key) could add an officer
        there; such an account acts only once its creation is on record, where auditors see it.
        """
        if not self.audit.has(f"officer:{officer.id}"):
            raise ForbiddenError("this account's creation is not on the audit record")

    def _record(
        self,
        actor: UUID | str,
        action: str,
        ref: str,
        case_id: UUID | None = None,
        subject: str | None = None,
    ) -> None:
        """Append to the audit trail durably first; raises when the trail refuses."""
        self.audit.record(
            AuditRecord(
                at=self.ports.clock.now(),
                actor=str(actor),
                action=action,
                ref=ref,
                case_id=case_id,
                subject=subject,
            )
        )

    # -- the admin's ----------------------------------------------------------------------

    def create_agency(self, name: str, jurisdiction: list[str], key: str | None) -> UUID:
        """Create an agency with a jurisdiction of province, city or county codes that exist."""
        unknown = sorted({c for c in jurisdiction if not self.ports.regions.is_jurisdiction(c)})
        if unknown:
            raise UnknownRegionError(
                "not a province, city or county on the national list (GB/T 2260): "
                + ", ".join(unknown)
            )
        agency_id = derive_id("agency", key) if key else self.ports.ids.new()
        if key and self.ports.directory.agency(agency_id) is not None:
            return agency_id
        codes = sorted(set(jurisdiction))
        self._record(
            ADMIN_ACTOR, "create agency", f"agency:{agency_id}", subject=f"{name} {','.join(codes)}"
        )
        self.app.commit(Agency(id=agency_id, name=name, jurisdiction=codes))
        return agency_id

    def create_officer(
        self, agency_id: UUID, name: str, role: OfficerRole, key: str | None
    ) -> Registration:
        """Create a tracer or supervisor of an agency."""
        if self.ports.directory.agency(agency_id) is None:
            raise NotFoundError("no such agency")
        officer_id = derive_id(f"officer|{agency_id}", key) if key else self.ports.ids.new()
        token, token_hash = self.ports.credentials.new_token()
        officer = Officer(
            id=officer_id, agency_id=agency_id, name=name, role=role.value, token_hash=token_hash
        )
        self._record(
            ADMIN_ACTOR,
            f"create {role.value}",
            f"officer:{officer_id}",
            subject=f"officer {officer_id} of agency {agency_id}",
        )
        self.app.create(officer)
        return Registration(id=officer_id, token=token)

    def create_auditor(self, name: str, key: str | None) -> Registration:
        """Create an auditor."""
        auditor_id = derive_id("auditor", key) if key else self.ports.ids.new()
        token, token_hash = self.ports.credentials.new_token()
        self._record(
            ADMIN_ACTOR, "create auditor", f"auditor:{auditor_id}", subject=f"auditor {auditor_id}"
        )
        self.app.create(Auditor(id=auditor_id, name=name, token_hash=token_hash))
        return Registration(id=auditor_id, token=token)

    # -- cases ----------------------------------------------------------------------------

    def open_case(
        self,
        officer: Principal,
        phone: str | None,
        visitor_id: UUID | None,
        start: datetime,
        end: datetime,
        legal_basis: str,
        key: str | None,
    ) -> Case:
        """A tracer opens a case for an index person found by phone or visitor id."""
        if officer.role != OfficerRole.TRACER or officer.agency_id is None:
            raise ForbiddenError("only a tracer opens cases")
        self._require_on_record(officer)
        Case.check_window(start, end, self.ports.clock.now(), self.policy)
        directory = self.ports.directory
        if phone is not None:
            index_ids = directory.visitors_by_phone(self.ports.credentials.phone_index(phone))
        elif visitor_id is not None and directory.guardian_of(visitor_id) is not None:
            index_ids = [visitor_id]
        else:
            index_ids = []
        if not index_ids:
            raise NotFoundError("nobody is registered as this index person")
        case_id = derive_id(f"case|{officer.id}", key) if key else self.ports.ids.new()
        if key is not None:
            try:
                existing: Case = self.app.repository.get(case_id)
                return existing
            except AggregateNotFoundError:
                pass
        case = Case(
            id=case_id,
            agency_id=officer.agency_id,
            opened_by=officer.id,
            index_ids=index_ids,
            start=start,
            end=end,
            legal_basis=legal_basis,
        )
        self._save(case)
        # Free text (legal basis, reasons) stays in the encrypted case: the trail is plain text.
        self._record_event(case, officer.id, "open case")
        return case

    def case(self, officer: Principal, case_id: UUID) -> Case:
        """A case of the officer's own agency; any other case is not found."""
        if officer.role not in (OfficerRole.TRACER, OfficerRole.SUPERVISOR):
            raise ForbiddenError("only officers read cases")
        self._require_on_record(officer)
        try:
            case: Case = self.app.repository.get(case_id)
        except AggregateNotFoundError:
            raise NotFoundError("no such case") from None
        if case.forgotten or case.agency_id != officer.agency_id:
            raise NotFoundError("no such case")
        return case

    def decide(self, officer: Principal, case_id: UUID, approve: bool, reason: str) -> Case:
        """A supervisor of the agency, not the opener, approves or rejects."""
        case = self.case(officer, case_id)
        if officer.role != OfficerRole.SUPERVISOR:
            raise ForbiddenError("only a supervisor approves or rejects cases")
        case.decide(officer.id, approve, reason, self.ports.clock.now(), self.policy.lifetime)
        self._save(case)
        action = "approve case" if approve else "reject case"
        self._record_event(case, officer.id, action)
        return case

    def close(self, officer: Principal, case_id: UUID, reason: str) -> Case:
        """An officer of the agency closes the case; every later read of it answers 409."""
        case = self.case(officer, case_id)
        case.close(officer.id, reason, self.ports.clock.now())
        self._save(case)
        self._record_event(case, officer.id, "close case")
        return case

    def status(self, case: Case) -> CaseStatus:
        """Where a case stands now (an approved case expires)."""
        return case.status_at(self.ports.clock.now())

    def _save(self, *aggregates: Case | ExposureNotice) -> None:
        try:
            self.app.commit(*aggregates)
        except IntegrityError:
            raise ConflictError("the case changed meanwhile; retry") from None

    def _record_event(
        self, case: Case, actor: UUID, action: str, subject: str | None = None
    ) -> None:
        """Audit the event just saved on the case, under a reference only it has."""
        self._record(actor, action, f"{case.id}:{case.version}", case.id, subject)

    def _agency(self, case: Case) -> AgencyView:
        agency = self.ports.directory.agency(case.agency_id)
        if agency is None:
            raise NotFoundError("no such agency")
        return agency

    # -- reading case data (each read is recorded first) ----------------------------------

    def trajectory(self, officer: Principal, case_id: UUID) -> Trajectory:
        """The index person's visits in the window, oldest first, inside the jurisdiction."""
        case = self.case(officer, case_id)
        case.record_access(officer.id, "trajectory", self.ports.clock.now())
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

    def _index_stays(self, case: Case, now: datetime, jurisdiction: list[str] | None) -> list[Stay]:
        stays: list[Stay] = []
        for person in case.index_ids:
            for stay in self.ports.contacts.stays_of(person, case.start, case.end, now):
                if stay.start < case.start or stay.start > case.end:
                    continue
                if jurisdiction is None or self._inside(stay.venue_id, jurisdiction):
                    stays.append(stay)
        return stays

    def _inside(self, venue_id: UUID, jurisdiction: list[str]) -> bool:
        venue = self.ports.directory.venue(venue_id)
        return venue is not None and in_jurisdiction(jurisdiction, venue.region)

    def contacts(
        self, officer: Principal, case_id: UUID, rule: ContactRule, depth: int
    ) -> list[Contact]:
        """Close contacts of the index person, only at venues inside the jurisdiction."""
        case = self.case(officer, case_id)
        case.require_readable(self.ports.clock.now())
        found = self._contacts(case, rule, depth)
        case.record_access(
            officer.id,
            f"contacts depth={depth}",
            self.ports.clock.now(),
            listed=[c.visitor_id for c in found],
        )
        self._save(case)
        self._record_event(case, officer.id, f"read contacts depth={depth}")
        return found

    def _contacts(self, case: Case, rule: ContactRule, depth: int) -> list[Contact]:
        if depth not in (1, MAX_DEPTH):
            raise InvalidInputError("depth is 1 or 2")
        jurisdiction = self._agency(case).jurisdiction
        now = self.ports.clock.now()
        index = self.ports.contacts

        def stays_at(venue_id: UUID, t0: datetime, t1: datetime) -> list[Stay]:
            if not self._inside(venue_id, jurisdiction):
                return []
            return index.stays_at(venue_id, t0, t1, now)

        def stays_of(person: UUID, t0: datetime, t1: datetime) -> list[Stay]:
            return [
                s
                for s in index.stays_of(person, t0, t1, now)
                if self._inside(s.venue_id, jurisdiction)
            ]

        return close_contacts(
            self._index_stays(case, now, jurisdiction),
            frozenset(case.index_ids),
            rule,
            depth,
            stays_at=stays_at,
            stays_of=stays_of,
            # Contacts of contacts only inside the case's window: a case is no live tracking.
            until=min(now, case.end + rule.after),
        )

    def details(self, officer: Principal, case_id: UUID, visitor_id: UUID) -> ContactDetails:
        """Name and phone of a contact this case listed; an erased contact is gone (410)."""
        case = self.case(officer, case_id)
        case.require_readable(self.ports.clock.now())
        case.check_listed(visitor_id)
        case.record_access(
            officer.id, "contact details", self.ports.clock.now(), subject=str(visitor_id)
        )
        self._save(case)
        self._record_event(case, officer.id, "reveal contact details", subject=str(visitor_id))
        guardian_id = self.ports.directory.guardian_of(visitor_id)
        if guardian_id is None:
            raise ContactErasedError("this contact erased their data")
        try:
            guardian: Visitor = self.app.repository.get(guardian_id)
        except AggregateNotFoundError:
            raise ContactErasedError("this contact erased their data") from None
        if guardian.erased or guardian.forgotten:
            raise ContactErasedError("this contact erased their data")
        if visitor_id == guardian_id:
            return ContactDetails(name=guardian.name, phone=guardian.phone)
        index = guardian.dependent_ids.index(visitor_id)
        return ContactDetails(name=guardian.dependent_names[index], phone=guardian.phone)

    def export(
        self, officer: Principal, case_id: UUID, rule: ContactRule, depth: int
    ) -> tuple[Trajectory, list[Contact]]:
        """Trajectory and contacts together, as one recorded read."""
        case = self.case(officer, case_id)
        case.require_readable(self.ports.clock.now())
        contacts = self._contacts(case, rule, depth)
        case.record_access(
            officer.id,
            "export",
            self.ports.clock.now(),
            listed=[c.visitor_id for c in contacts],
        )
        self._save(case)
        self._record_event(case, officer.id, f"export depth={depth}")
        return self._trajectory(case), contacts

    # -- exposures ------------------------------------------------------------------------

    def declare_exposure(
        self, officer: Principal, case_id: UUID, venue_id: UUID, start: datetime, end: datetime
    ) -> ExposureNotice:
        """A tracer alerts those at a venue while the case's index person was there."""
        case = self.case(officer, case_id)
        if officer.role != OfficerRole.TRACER:
            raise ForbiddenError("only a tracer declares exposures")
        now = self.ports.clock.now()
        case.require_readable(now)
        if end <= start or end - start > timedelta(days=28):
            raise ExposureWindowError("the exposure window must run forwards, at most 28 days")
        jurisdiction = self._agency(case).jurisdiction
        if not self._inside(venue_id, jurisdiction):
            raise NotFoundError("no such venue in the agency's jurisdiction")
        # Tied to the trajectory: anything else would alert strangers and tell the tracer
        # whether anybody was somewhere (a presence oracle).
        if not self._on_trajectory(case, venue_id, start, end, now):
            raise ExposureOffTrajectoryError(
                "the exposure must lie within a visit of the case's index person at this venue"
                " (from check-in until 30 minutes after check-out)"
            )
        people = {
            s.visitor_id
            for s in self.ports.contacts.stays_at(venue_id, start, end, now)
            if s.start <= end and start <= s.end and s.visitor_id not in case.index_ids
        }
        notice = ExposureNotice(
            id=self.ports.ids.new(),
            case_id=case_id,
            venue_id=venue_id,
            start=start,
            end=end,
            declared_by=officer.id,
            declared_at=now,
            notified=len(people),
        )
        case.record_access(officer.id, "exposure", now, subject=str(venue_id))
        self._save(case, notice)
        self._record_event(case, officer.id, "declare exposure", subject=f"venue {venue_id}")
        return notice

    def _on_trajectory(
        self, case: Case, venue_id: UUID, start: datetime, end: datetime, now: datetime
    ) -> bool:
        """Whether [start, end] lies within one of the index person's stays at the venue."""
        rule = EXPOSURE_RULE
        return any(
            stay.venue_id == venue_id
            and stay.start - rule.before <= start
            and end <= stay.end + rule.after
            for stay in self._index_stays(case, now, jurisdiction=None)
        )

    def exposures_of(self, visitor_id: UUID) -> list[tuple[ExposureView, VenueView]]:
        """Declared exposures overlapping the visitor's own (and dependents') visits."""
        now = self.ports.clock.now()
        visits = self.ports.visits.of_guardian(visitor_id, now - timedelta(days=28), now)
        found: dict[UUID, tuple[ExposureView, VenueView]] = {}
        for visit in visits:
            venue = self.ports.directory.venue(visit.venue_id)
            if venue is None:
                continue
            end = visit.checked_out_at or min(
                now, visit.checked_in_at + timedelta(minutes=venue.max_dwell_minutes)
            )
            for exposure in self.ports.exposures.at_venue(visit.venue_id, visit.checked_in_at, end):
                found.setdefault(exposure.exposure_id, (exposure, venue))
        return sorted(found.values(), key=lambda pair: pair[0].declared_at)
