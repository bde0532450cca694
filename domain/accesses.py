"""Who read my data: every read of a visitor's (or their dependents') data by an agency.

The read side knows which recorded case reads concerned a person (as index person, or as a
contact listed or revealed); each is shown only once its entry is on the audit trail, under the
reference the case event has there (`case_id:version`). The plain-text trail holds no personal
data nor free text: the agency and the legal basis come from the encrypted case itself.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from domain.app import Fangxin
from domain.cases import Case
from domain.outreach_ports import AccessIndex
from domain.ports import AuditTrail, NotStoredError

# What each recorded read is called for the visitor (the case event's `what`, by its first word).
ACTIONS = {
    "trajectory": "read trajectory",
    "contacts": "read contacts",
    "contact": "read contact details",
    "reveal": "read contact details",
    "export": "export",
    "exposure": "declare exposure",
}


class Access(msgspec.Struct, frozen=True):
    """One read of the visitor's data: by which agency, what, when, on what legal basis."""

    agency: str
    action: str
    at: datetime
    legal_basis: str


class Accesses:
    """A visitor's view of the audit trail: the reads of their own data, and nobody else's."""

    def __init__(self, app: Fangxin, audit: AuditTrail, index: AccessIndex) -> None:
        self.ports = app.ports
        self.store = app.store
        self.audit = audit
        self.index = index

    def of(self, visitor_id: UUID) -> list[Access]:
        """Reads of the visitor's and their dependents' data, oldest first."""
        visitor = self.ports.directory.visitor(visitor_id)
        people = [visitor_id, *(visitor.dependents.values() if visitor else ())]
        cases: dict[UUID, Case | None] = {}
        found: list[Access] = []
        for read in self.index.of_people(people):
            if not self.audit.has(f"{read.case_id}:{read.version}"):
                continue  # not on the audit record: no read the trail vouches for
            if read.case_id not in cases:
                cases[read.case_id] = self._case(read.case_id)
            case = cases[read.case_id]
            if case is None:
                continue
            agency = self.ports.directory.agency(case.agency_id)
            found.append(
                Access(
                    agency=agency.name if agency else "",
                    action=ACTIONS.get(read.what.split(" ")[0], read.what),
                    at=read.at,
                    legal_basis=case.legal_basis,
                )
            )
        return found

    def _case(self, case_id: UUID) -> Case | None:
        try:
            case: Case = self.store.get(case_id)
        except NotStoredError:
            return None
        return None if case.forgotten else case


def concerned(what: str, subject: str | None, listed: list[UUID]) -> tuple[bool, list[UUID]]:
    """Whom a recorded case read concerns: (the case's index people?, these other people)."""
    # Cases record a reveal as "reveal contact details" (older logs: "contact details").
    if what in ("reveal contact details", "contact details"):
        try:
            return False, [UUID(subject or "")]
        except ValueError:
            return False, []
    return True, list(listed)
