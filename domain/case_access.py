"""What every part of casework shares: the officer's access to a case, and the audit trail.

Every read of case data is recorded on the case (an event in the log) and in the audit trail,
its own append-only store, before it is answered; every admin action is recorded in the trail
before it is done. When the trail refuses an entry, nothing is shown and nothing is done.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.app import Fangxin
from domain.cases import Case, CasePolicy, CaseStatus, ExposureNotice, in_jurisdiction
from domain.errors import ConcurrentChangeError, ConflictError, ForbiddenError, NotFoundError
from domain.people import OfficerRole
from domain.ports import AgencyView, AuditRecord, AuditTrail, NotStoredError, Principal
from domain.tracing import Stay


class CaseAccess:
    """An agency's cases, as its officers may reach them, each step on the audit record."""

    def __init__(self, app: Fangxin, audit: AuditTrail, policy: CasePolicy | None = None) -> None:
        self.app = app
        self.ports = app.ports
        self.store = app.store
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

    def case(self, officer: Principal, case_id: UUID) -> Case:
        """A case of the officer's own agency; any other case is not found."""
        if officer.role not in (OfficerRole.TRACER, OfficerRole.SUPERVISOR):
            raise ForbiddenError("only officers read cases")
        self._require_on_record(officer)
        try:
            case: Case = self.store.get(case_id)
        except NotStoredError:
            raise NotFoundError("no such case") from None
        if case.forgotten or case.agency_id != officer.agency_id:
            raise NotFoundError("no such case")
        return case

    def status(self, case: Case) -> CaseStatus:
        """Where a case stands now (an approved case expires)."""
        return case.status_at(self.ports.clock.now())

    def _save(self, *aggregates: Case | ExposureNotice) -> None:
        try:
            self.store.commit(*aggregates)
        except ConcurrentChangeError:
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

    def _index_stays(self, case: Case, now: datetime, jurisdiction: list[str] | None) -> list[Stay]:
        stays: list[Stay] = []
        windows = [(person, case.start, case.end) for person in case.index_ids]
        found = self.ports.contacts.stays_of_many(windows, now) if windows else []
        for person_stays in found:
            for stay in person_stays:
                if stay.start < case.start or stay.start > case.end:
                    continue
                if jurisdiction is None or self._inside(stay.venue_id, jurisdiction):
                    stays.append(stay)
        return stays

    def _inside(self, venue_id: UUID, jurisdiction: list[str]) -> bool:
        venue = self.ports.directory.venue(venue_id)
        return venue is not None and in_jurisdiction(jurisdiction, venue.region)
