"""An agency's cases as its officers list them: newest first, a page at a time.

A list shows what each case asks for (window, how the index person was named, how many
people, the legal basis) and where it stands, never who the index person is: nothing in it is
personal data, so listing is not an access to case data and is not audited.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

import msgspec

from domain.case_access import CaseAccess
from domain.cases import Case, CaseStatus
from domain.errors import ForbiddenError, InvalidInputError
from domain.people import OfficerRole
from domain.ports import Listed, NotStoredError, Principal

MAX_PAGE = 200


class InvalidCursorError(InvalidInputError):
    """A cursor is not one a case list answered."""

    kind = "invalid-cursor"


class ListedCase(msgspec.Struct, frozen=True):
    """A case and where it stands now."""

    case: Case
    status: CaseStatus


class CasePage(msgspec.Struct, frozen=True):
    """One page of cases; `cursor` asks for the next one (None: this was the last)."""

    cases: list[ListedCase]
    cursor: str | None


def encode_cursor(entry: Listed) -> str:
    """An opaque cursor after this entry (its time and id; nothing secret)."""
    raw = f"{entry.at.isoformat()}|{entry.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Listed:
    """The entry a cursor points after; 400 when it is not a cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, ident = raw.partition("|")
        listed = Listed(at=datetime.fromisoformat(at), id=UUID(ident))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError("cursor is not one a case list answered") from None
    if listed.at.tzinfo is None:
        raise InvalidCursorError("cursor is not one a case list answered")
    return listed


class CaseList(CaseAccess):
    """The cases of the officer's own agency."""

    def cases_of(
        self,
        officer: Principal,
        status: CaseStatus | None,
        limit: int,
        cursor: str | None,
    ) -> CasePage:
        """Cases of the officer's agency newest first, only those in `status` if given."""
        if officer.role not in (OfficerRole.TRACER, OfficerRole.SUPERVISOR):
            raise ForbiddenError("only officers list cases")
        self._require_on_record(officer)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"limit is 1 to {MAX_PAGE}")
        after = decode_cursor(cursor) if cursor is not None else None
        now = self.ports.clock.now()
        found: list[ListedCase] = []
        last: Listed | None = None
        entries = self.ports.roster.listed("cases", officer.agency_id)
        for i, entry in enumerate(entries):
            if after is not None and (entry.at, entry.id) >= (after.at, after.id):
                continue
            case = self._listed_case(entry.id, officer)
            if case is None:
                continue
            current = case.status_at(now)
            if status is not None and current is not status:
                continue
            found.append(ListedCase(case=case, status=current))
            last = entry
            if len(found) == limit:
                more = i + 1 < len(entries)
                return CasePage(cases=found, cursor=encode_cursor(last) if more else None)
        return CasePage(cases=found, cursor=None)

    def _listed_case(self, case_id: UUID, officer: Principal) -> Case | None:
        try:
            case: Case = self.store.get(case_id)
        except NotStoredError:
            return None
        if case.forgotten or case.agency_id != officer.agency_id:
            return None
        return case
