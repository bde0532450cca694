"""The people who use Fangxin: visitors (shoppers) and merchants."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import GoneError, NotFoundError


class VisitorErasedError(GoneError):
    """The visitor erased their data."""

    kind = "visitor-erased"


class Visitor(Aggregate):
    """A pseudonymous shopper; name and phone only ever stored encrypted under their own key."""

    forgotten = False
    erased = False

    class Registered(Aggregate.Created):
        """A shopper registered (or was registered at a till, `assisted`)."""

        name: str
        phone: str
        phone_index: str
        token_hash: str
        dependent_ids: list[UUID]
        dependent_names: list[str]
        assisted: bool

        @property
        def privacy_scopes(self) -> tuple[str, ...]:
            """Keys this event is encrypted under: the visitor's own."""
            return (f"visitor:{self.originator_id}",)

    class Erased(Aggregate.Event):
        """The visitor erased their data; the event itself carries none."""

        at: datetime

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        name: str,
        phone: str,
        phone_index: str,
        token_hash: str,
        dependent_ids: list[UUID],
        dependent_names: list[str],
        assisted: bool,
    ) -> None:
        self.name = name
        self.phone = phone
        self.phone_index = phone_index
        self.token_hash = token_hash
        self.dependent_ids = list(dependent_ids)
        self.dependent_names = list(dependent_names)
        self.assisted = assisted

    def erase(self, at: datetime) -> None:
        """Record the erasure; the caller then destroys the visitor's key."""
        if self.erased:
            raise VisitorErasedError("this visitor's data was erased")
        self._erased(at=at)

    @event(Erased)
    def _erased(self, at: datetime) -> None:
        self.erased = True


class Merchant(Aggregate):
    """A shop owner: owns venues, sees their statistics, never their visitors."""

    forgotten = False

    class Registered(Aggregate.Created):
        """A merchant registered."""

        name: str
        contact_phone: str
        token_hash: str

    @event(Registered)
    def __init__(self, id: UUID, name: str, contact_phone: str, token_hash: str) -> None:
        self.name = name
        self.contact_phone = contact_phone
        self.token_hash = token_hash


class Agency(Aggregate):
    """A health authority with a jurisdiction of region codes."""

    forgotten = False

    class Registered(Aggregate.Created):
        """The admin created an agency."""

        name: str
        jurisdiction: list[str]

    @event(Registered)
    def __init__(self, id: UUID, name: str, jurisdiction: list[str]) -> None:
        self.name = name
        self.jurisdiction = list(jurisdiction)


class OfficerRole(StrEnum):
    """What an officer of an agency may do."""

    TRACER = "tracer"
    SUPERVISOR = "supervisor"


class Account(Aggregate):
    """An officer's or auditor's account: its token can be replaced, the account closed.

    Only the hash of a token is in the log; closing keeps the account (its past actions stay
    in the audit trail under its id) but no token of it works again.
    """

    forgotten = False
    active = True

    class TokenRotated(Aggregate.Event):
        """The token was replaced: the old one stops, the new one's hash is kept.

        It names whose token it is (role, agency), as a registration does, for the read side.
        """

        token_hash: str
        role: str
        agency_id: UUID | None
        at: datetime

    class Deactivated(Aggregate.Event):
        """The account was closed: its token stops for good."""

        at: datetime

    def rotate_token(self, token_hash: str, at: datetime) -> None:
        """Replace the token (refused once the account is closed)."""
        if not self.active:
            raise AccountClosedError("this account was deactivated")
        self._token_rotated(
            token_hash=token_hash,
            role=self.role_name,
            agency_id=getattr(self, "agency_id", None),
            at=at,
        )

    @property
    def role_name(self) -> str:
        """What the account's token lets it do: `tracer`, `supervisor` or `auditor`."""
        return str(getattr(self, "role", "auditor"))

    @event(TokenRotated)
    def _token_rotated(
        self, token_hash: str, role: str, agency_id: UUID | None, at: datetime
    ) -> None:
        self.token_hash = token_hash

    def deactivate(self, at: datetime) -> None:
        """Close the account; closing a closed account changes nothing."""
        if self.active:
            self._deactivated(at=at)

    @event(Deactivated)
    def _deactivated(self, at: datetime) -> None:
        self.active = False


class AccountClosedError(NotFoundError):
    """A deactivated account is gone for everything but the audit trail."""

    kind = "account-deactivated"


class Officer(Account):
    """A tracer or supervisor of one agency."""

    class Registered(Aggregate.Created):
        """The admin created an officer."""

        agency_id: UUID
        name: str
        role: str
        token_hash: str

    @event(Registered)
    def __init__(self, id: UUID, agency_id: UUID, name: str, role: str, token_hash: str) -> None:
        self.agency_id = agency_id
        self.name = name
        self.role = OfficerRole(role)
        self.token_hash = token_hash


class Auditor(Account):
    """Reads and verifies the audit trail; reads nothing else."""

    class Registered(Aggregate.Created):
        """The admin created an auditor."""

        name: str
        token_hash: str

    @event(Registered)
    def __init__(self, id: UUID, name: str, token_hash: str) -> None:
        self.name = name
        self.token_hash = token_hash
