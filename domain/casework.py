"""Health authorities' work: agencies, officers, cases and their decisions, exposures.

Reads of case data are in `case_reads`, what they share (access, audit) in `case_access`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from domain.accounts import ADMIN_ACTOR, Accounts
from domain.answers import Registration
from domain.case_list import CaseList
from domain.case_reads import CaseReads
from domain.cases import Case, ExposureNotice
from domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnknownRegionError,
)
from domain.ids import derive_id
from domain.people import Agency, Auditor, Officer, OfficerRole
from domain.ports import ExposureView, NotStoredError, Principal, VenueView
from domain.tracing import ContactRule

__all__ = ["ADMIN_ACTOR", "Casework"]

# What an exposure declared from a case may cover around the index person's visit.
EXPOSURE_RULE = ContactRule()


class ExposureWindowError(InvalidInputError):
    """An exposure window is reversed or longer than the case allows."""

    kind = "invalid-exposure-window"


class ExposureOffTrajectoryError(ConflictError):
    """An exposure must lie within a visit of the case's index person at that venue."""

    kind = "exposure-off-trajectory"


class Casework(Accounts, CaseList, CaseReads):
    """Commands and queries of agencies, officers and auditors."""

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
        self.store.commit(Agency(id=agency_id, name=name, jurisdiction=codes))
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
                existing: Case = self.store.get(case_id)
                return existing
            except NotStoredError:
                pass
        case = Case(
            id=case_id,
            agency_id=officer.agency_id,
            opened_by=officer.id,
            index_ids=index_ids,
            start=start,
            end=end,
            legal_basis=legal_basis,
            opened_at=self.ports.clock.now(),
            index_by="phone" if phone is not None else "visitor_id",
        )
        self._save(case)
        # Free text (legal basis, reasons) stays in the encrypted case: the trail is plain text.
        self._record_event(case, officer.id, "open case")
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

    # -- exposures ------------------------------------------------------------------------

    def declare_exposure(
        self,
        officer: Principal,
        case_id: UUID,
        venue_id: UUID,
        start: datetime,
        end: datetime,
        advice: str,
    ) -> ExposureNotice:
        """A tracer alerts those at a venue while the case's index person was there, with
        advice on what to do; the index persons are not alerted at their own visits."""
        if not advice.strip():
            raise InvalidInputError("an exposure needs advice for the people it reaches")
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
            advice=advice,
            exempt=tuple(case.index_ids),
        )
        case.record_access(officer.id, "declare exposure", now, subject=str(venue_id))
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
            # Answers show times to the second, so a window copied from one must fit.
            and stay.start.replace(microsecond=0) - rule.before <= start
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
                if visit.visitor_id in exposure.exempt:
                    continue
                found.setdefault(exposure.exposure_id, (exposure, venue))
        return sorted(found.values(), key=lambda pair: pair[0].declared_at)
