"""The apply script's arguments for issue 19's events: notices, risk levels, case reads and a
merchant's new token; pseudonyms and sealed records only, like `args.py`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.cases import Case
from domain.notices import VenueNotice
from domain.people import Merchant
from domain.ports import Principal
from domain.risk import RegionRisk
from infrastructure.readmodels.notice_views import access_of, notice_view, risk_view
from infrastructure.readmodels.redis.records import RedisRecords

Args = list[str | bytes]


def notice_args(records: RedisRecords, event: DomainEventProtocol[UUID]) -> Args | None:
    """The arguments of one of these events, or None for any other event."""
    e: Any = event
    p = records.pseudonyms.of
    if isinstance(event, VenueNotice.Sent):
        notice = notice_view(e)
        stored = records.seal(records.name("ntc", e.venue_id), notice)
        told = records.seal(f"{records.prefix}notices", notice)
        return ["notice", p(e.venue_id), stored, told]
    if isinstance(event, RegionRisk.LevelSet):
        sealed = records.seal(f"{records.prefix}risk:{e.region}", risk_view(e))
        return ["risk", e.region, sealed]
    if isinstance(event, Case.Opened):
        pairs: Args = []
        for person in e.index_ids:
            pairs += [p(person), records.seal(records.name("acase", person), e.originator_id)]
        # Counted: a roster entry (the case list) may follow the pairs.
        return ["access-case", str(len(pairs)), *pairs]
    if isinstance(event, Case.Accessed):
        access, of_index, people = access_of(e)
        case = records.seal(records.name("areads", e.originator_id), access) if of_index else b""
        pairs = []
        for person in people:
            pairs += [p(person), records.seal(records.name("aperson", person), access)]
        return ["access-read", p(e.originator_id), case, *pairs]
    if isinstance(event, Merchant.TokenRotated):
        token = records.pseudonyms.token(e.token_hash)
        principal = Principal(role="merchant", id=e.originator_id)
        sealed = records.seal(f"{records.prefix}tok:{token}", principal)
        return ["retoken", token, p(e.originator_id), sealed]
    return None
