"""What the apply script is given for each event: pseudonyms and sealed records only.

The script builds key names from pseudonyms and stores sealed values as they come, so neither
Redis nor anyone reading its commands (MONITOR, a replica, a dump) sees an id, a name or a
token, and nothing Redis holds can be turned into a record a worker would believe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol

from domain.cases import ExposureNotice
from domain.people import Account, Agency, Auditor, Merchant, Officer, Visitor
from domain.venues import Venue
from domain.visits import Visit
from infrastructure.readmodels import views
from infrastructure.readmodels.redis.notice_args import notice_args
from infrastructure.readmodels.redis.records import RedisRecords, VisitIn
from infrastructure.readmodels.redis.roster import roster_args
from infrastructure.readmodels.rosters import new_principal, roster_entry

Args = list[str | bytes]


def epoch(at: datetime) -> float:
    """Seconds since the epoch."""
    return at.timestamp()


class EventArgs:
    """Turns events into the apply script's arguments for one deployment's records."""

    def __init__(self, records: RedisRecords) -> None:
        self._records = records
        self._p = records.pseudonyms.of
        self._prefix = records.prefix

    def of(self, event: DomainEventProtocol[UUID]) -> Args:
        """The arguments after (prefix, id) for one event; ['skip'] for events of no concern."""
        args = self._of(event)
        # An entry of a roster comes after the event's own arguments, or alone.
        entry = roster_entry(event)
        if entry is not None:
            listed = roster_args(self._records, entry)
            return [*args, *listed] if args[0] != "skip" else ["listed", *listed]
        return args

    def _of(self, event: DomainEventProtocol[UUID]) -> Args:
        e: Any = event
        if isinstance(event, Account.TokenRotated | Account.Deactivated):
            return self._account(e)
        if isinstance(event, Visit.CheckedIn):
            return self._checked_in(e)
        if isinstance(event, Visit.CheckedOut):
            # A closed visit leaves Redis; the history keeps it.
            return ["checkout", self._p(e.originator_id)]
        if isinstance(event, Visitor.Registered):
            return self._visitor(e)
        if isinstance(event, Visitor.Erased):
            return ["erased", self._p(e.originator_id)]
        if isinstance(event, Merchant.Registered | Officer.Registered | Auditor.Registered):
            return ["principal", *self._token(e)]
        if isinstance(event, Venue.Registered):
            venue, name = self._p(e.originator_id), self._records.name("venue", e.originator_id)
            sealed = self._records.seal(name, views.venue_view(e))
            dwell = str(e.max_dwell_minutes * 60)
            return ["venue", venue, self._p(e.merchant_id), sealed, dwell]
        if isinstance(event, Venue.Changed):
            venue, name = self._p(e.originator_id), self._records.name("venue", e.originator_id)
            sealed = self._records.seal(name, views.venue_view(e))
            return ["edited", venue, sealed, str(e.max_dwell_minutes * 60)]
        if isinstance(event, Venue.CodeRotated):
            name = self._records.name("vcode", e.originator_id)
            return ["rotated", self._p(e.originator_id), self._records.seal(name, e.key_version)]
        if isinstance(event, Agency.Registered):
            name = self._records.name("agency", e.originator_id)
            sealed = self._records.seal(name, views.agency_view(e))
            return ["agency", self._p(e.originator_id), sealed]
        if isinstance(event, ExposureNotice.Declared):
            # Told to connected visitors; the history keeps it.
            told = self._records.seal(f"{self._prefix}exposures", views.exposure_view(e))
            return ["exposure", told]
        # Notices, risk levels, case reads and merchants' new tokens (issue 19).
        return notice_args(self._records, event) or ["skip"]

    def _checked_in(self, e: Visit.CheckedIn) -> Args:
        visit, person, venue = self._p(e.originator_id), self._p(e.visitor_id), self._p(e.venue_id)
        start = repr(epoch(e.at))
        # What is sealed at check-in is the visit's view up to its check-out fields.
        made = VisitIn(*msgspec.structs.astuple(views.visit_view(e))[:6])
        sealed = self._records.visit_in(visit, made)
        # The record without its planned dwell, which the script adds from the venue's.
        record = f'{{"v":"{visit}","p":"{person}","u":"{venue}","s":{start},"i":"{sealed}"}}'
        return ["checkin", record, visit, person, venue, start]

    def _account(self, e: Account.TokenRotated | Account.Deactivated) -> Args:
        """(principal, new token, sealed principal): the old tokens go, a new one may come."""
        principal = self._p(e.originator_id)
        if isinstance(e, Account.Deactivated):
            return ["account", principal, "", b""]
        token = self._records.pseudonyms.token(e.token_hash)
        sealed = self._records.seal(f"{self._prefix}tok:{token}", new_principal(e))
        return ["account", principal, token, sealed]

    def _token(self, e: views.Registered) -> Args:
        """(token, principal, sealed principal): the pseudonyms and the record of a token."""
        if not e.token_hash:
            return ["", self._p(e.originator_id), b""]
        token = self._records.pseudonyms.token(e.token_hash)
        sealed = self._records.seal(f"{self._prefix}tok:{token}", views.principal(e))
        return [token, self._p(e.originator_id), sealed]

    def _visitor(self, e: Visitor.Registered) -> Args:
        records, visitor = self._records, self._p(e.originator_id)
        phone = records.pseudonyms.phone(e.phone_index)
        view = views.visitor_view(e).view(records.pseudonyms)
        # What erasure must find (the phone's entry, the dependents), beside the sealed view.
        stored = msgspec.json.encode(
            {
                "phone": phone,
                "people": [self._p(d) for d in e.dependent_ids],
                "view": records.sealed_text(records.name("visitor", e.originator_id), view),
            }
        )
        entry = records.seal(f"{self._prefix}phone:{phone}#{visitor}", e.originator_id)
        guardians: Args = []
        for person in (e.originator_id, *e.dependent_ids):
            sealed = records.seal(records.name("guardian", person), e.originator_id)
            guardians += [self._p(person), sealed]
        return ["visitor", *self._token(e), stored, phone, entry, *guardians]
