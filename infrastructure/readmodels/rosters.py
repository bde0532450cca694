"""What the read side lists, and what an account's token change means: both deployments'.

Rosters keep ids only (agencies, auditors, an agency's officers and cases, each with the time
it was made); names, statuses and legal bases stay in the encrypted log, read when listed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol

from domain.cases import Case
from domain.people import Account, Agency, Auditor, Officer
from domain.ports import Listed, Principal


class RosterEntry(msgspec.Struct, frozen=True):
    """One entry for roster `kind` of `owner` (None: the whole deployment's)."""

    kind: str
    owner: UUID | None
    entry: Listed


def roster_entry(event: DomainEventProtocol[UUID]) -> RosterEntry | None:
    """The entry an event adds to a roster, if any."""
    e: Any = event
    made = Listed(at=e.timestamp, id=e.originator_id)
    if isinstance(event, Agency.Registered):
        return RosterEntry(kind="agencies", owner=None, entry=made)
    if isinstance(event, Auditor.Registered):
        return RosterEntry(kind="auditors", owner=None, entry=made)
    if isinstance(event, Officer.Registered):
        return RosterEntry(kind="officers", owner=e.agency_id, entry=made)
    if isinstance(event, Case.Opened):
        opened = Listed(at=e.opened_at or e.timestamp, id=e.originator_id)
        return RosterEntry(kind="cases", owner=e.agency_id, entry=opened)
    return None


def new_principal(event: Account.TokenRotated) -> Principal:
    """Whose the rotated token is."""
    return Principal(role=event.role, id=event.originator_id, agency_id=event.agency_id)


ACCOUNT_EVENTS = (Account.TokenRotated, Account.Deactivated)
