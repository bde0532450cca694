"""The platform admin's accounts: listing agencies, officers and auditors; replacing a token;
closing an account.

Every change is on the audit record before it is made (actor `platform-admin`, or the account
itself when it replaces its own token); a closed account's past actions stay in the trail.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

import msgspec

from domain.case_access import CaseAccess
from domain.errors import ForbiddenError, NotFoundError
from domain.people import Account, AccountClosedError, Auditor, Officer
from domain.ports import AgencyView, NotStoredError, Principal

# The audit trail's actor for the platform admin, who has one token and no account id.
ADMIN_ACTOR = "platform-admin"


class AccountKind(StrEnum):
    """Which accounts the admin manages (by path: `/v1/officers`, `/v1/auditors`)."""

    OFFICER = "officer"
    AUDITOR = "auditor"


class AgencyEntry(msgspec.Struct, frozen=True):
    """An agency as the admin lists it."""

    agency: AgencyView
    created_at: datetime


class AccountEntry(msgspec.Struct, frozen=True):
    """An officer or auditor as the admin lists it: never its token."""

    id: UUID
    name: str
    role: str
    active: bool
    created_at: datetime
    agency_id: UUID | None = None


def _entry(account: Officer | Auditor) -> AccountEntry:
    return AccountEntry(
        id=account.id,
        name=account.name,
        role=account.role_name,
        active=account.active,
        created_at=account.created_on,
        agency_id=getattr(account, "agency_id", None),
    )


class Accounts(CaseAccess):
    """What the admin (and an account, of itself) may do with accounts."""

    def agencies(self) -> list[AgencyEntry]:
        """Every agency, newest first."""
        found: list[AgencyEntry] = []
        for listed in self.ports.roster.listed("agencies", None):
            agency = self.ports.directory.agency(listed.id)
            if agency is not None:
                found.append(AgencyEntry(agency=agency, created_at=listed.at))
        return found

    def officers_of(self, agency_id: UUID) -> list[AccountEntry]:
        """An agency's officers, newest first, closed ones too (marked inactive)."""
        if self.ports.directory.agency(agency_id) is None:
            raise NotFoundError("no such agency")
        return [
            _entry(self._account(AccountKind.OFFICER, listed.id, closed_too=True))
            for listed in self.ports.roster.listed("officers", agency_id)
        ]

    def auditors(self) -> list[AccountEntry]:
        """Every auditor, newest first, closed ones too (marked inactive)."""
        return [
            _entry(self._account(AccountKind.AUDITOR, listed.id, closed_too=True))
            for listed in self.ports.roster.listed("auditors", None)
        ]

    def rotate_token(self, actor: Principal, kind: AccountKind, account_id: UUID) -> str:
        """A new token for the account (the admin's, or its own); the old one stops now."""
        if actor.role != "admin" and actor.id != account_id:
            raise ForbiddenError("only the admin or the account itself replaces its token")
        who = ADMIN_ACTOR if actor.role == "admin" else actor.id
        with self.store.exclusive(account_id):
            account = self._account(kind, account_id)
            if actor.role not in ("admin", account.role_name):
                raise ForbiddenError("only the admin or the account itself replaces its token")
            token, token_hash = self.ports.credentials.new_token()
            self._record(
                who,
                f"rotate {kind.value} token",
                f"{kind.value}:{account_id}@{account.version + 1}",
                subject=f"{kind.value} {account_id}",
            )
            account.rotate_token(token_hash, self.ports.clock.now())
            self.store.commit(account)
        return token

    def deactivate(self, kind: AccountKind, account_id: UUID) -> None:
        """Close an account for good: its token stops; a closed one stays closed."""
        with self.store.exclusive(account_id):
            account = self._account(kind, account_id, closed_too=True)
            if not account.active:
                return
            self._record(
                ADMIN_ACTOR,
                f"deactivate {kind.value}",
                f"{kind.value}:{account_id}@{account.version + 1}",
                subject=f"{kind.value} {account_id}",
            )
            account.deactivate(self.ports.clock.now())
            self.store.commit(account)

    def _account(
        self, kind: AccountKind, account_id: UUID, closed_too: bool = False
    ) -> Officer | Auditor:
        wanted = Officer if kind is AccountKind.OFFICER else Auditor
        try:
            account: Account = self.store.get(account_id)
        except NotStoredError:
            raise NotFoundError(f"no such {kind.value}") from None
        if not isinstance(account, wanted) or account.forgotten:
            raise NotFoundError(f"no such {kind.value}")
        if not account.active and not closed_too:
            raise AccountClosedError(f"this {kind.value} was deactivated")
        return account
