"""Redis read models (the production deployment): the read side of the ports.

The projection (`redis_projection.py`) writes these keys; every worker reads them. Keys are
named by keyed pseudonyms and records are sealed (`redis_records.py`): what fails its seal is
refused as if absent. Contact tracing's stays and exposures are in `redis_tracing.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
import redis
from eventsourcing.domain import DomainEventProtocol

from domain.people import Account, Visitor
from domain.ports import (
    AgencyView,
    Principal,
    VenueView,
    VisitorView,
)
from domain.venues import Venue
from infrastructure.readmodels.records import refused
from infrastructure.readmodels.redis.loop import Gathered, LoopClients
from infrastructure.readmodels.redis.records import RedisRecords, texts

_principal = msgspec.msgpack.Decoder(Principal)
_venue = msgspec.msgpack.Decoder(VenueView)
_version = msgspec.msgpack.Decoder(int)
_visitor = msgspec.msgpack.Decoder(VisitorView)
_agency = msgspec.msgpack.Decoder(AgencyView)
_id = msgspec.msgpack.Decoder(UUID)


class _StoredVisitor(msgspec.Struct, frozen=True):
    """A visitor's record: what erasure must find (pseudonyms), and the sealed view."""

    phone: str
    people: list[str]
    view: str


_stored_visitor = msgspec.json.Decoder(_StoredVisitor)


class _Cache:
    """A small time-bounded cache of hot, rarely changing entries (tokens, venues)."""

    def __init__(self, ttl: float, size: int = 100_000) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: Any) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def clear(self) -> None:
        self._entries.clear()

    def drop_where(self, test: Callable[[Any], bool]) -> None:
        for key in [k for k, (_, v) in list(self._entries.items()) if test(v)]:
            self._entries.pop(key, None)


class RedisDirectory:
    """Tokens, visitors, venues and agencies in Redis, each record sealed under its key name.

    A record that fails its seal (forged, altered, or moved from another key) is refused as if
    absent: an unknown token (401), agency or venue (404). Tokens and venues are read on every
    check-in and change rarely: each worker keeps them, checked, a few seconds, and drops them
    at once when the runner announces an erasure, a code rotation or an edit (`changed` below,
    fed by Redis pub/sub, which names them by pseudonym).
    """

    def __init__(
        self,
        client: redis.Redis,
        records: RedisRecords,
        cache_seconds: float = 0.0,
        loop_clients: LoopClients | None = None,
    ) -> None:
        self._r = client
        self._records = records
        self._p = records.prefix
        self._pseudonyms = records.pseudonyms
        # Entries are (what was read, its pseudonym), so that a change names what to drop.
        self._tokens = _Cache(cache_seconds)
        self._venues = _Cache(cache_seconds)
        self._cache = cache_seconds > 0
        self._loop_clients = loop_clients
        self._token_reads: Gathered[str, bytes | str | None] = Gathered(self._read_tokens)

    def changed(self, what: str) -> None:
        """Forget cached entries of a principal or venue that changed (`principal:PSEUDONYM`)."""
        kind, _, pseudonym = what.partition(":")
        if kind == "principal":
            self._tokens.drop_where(lambda entry: entry[1] == pseudonym)
        elif kind == "venue":
            self._venues.drop_where(lambda entry: entry[1] == pseudonym)

    def forget_all(self) -> None:
        """Drop every cached token and venue (after missed change messages)."""
        self._tokens.clear()
        self._venues.clear()

    def written(self, events: list[DomainEventProtocol[UUID]]) -> None:
        """This process's own changes: refresh its cache before it answers (read-your-writes)."""
        for event in events:
            if isinstance(event, Venue.CodeRotated | Venue.Changed):
                self.changed(f"venue:{self._pseudonyms.of(event.originator_id)}")
            elif isinstance(event, Visitor.Erased | Account.TokenRotated | Account.Deactivated):
                self.changed(f"principal:{self._pseudonyms.of(event.originator_id)}")

    def _token_name(self, token_hash: str) -> str:
        return f"{self._p}tok:{self._pseudonyms.token(token_hash)}"

    def principal(self, token_hash: str) -> Principal | None:
        """Whose token this is."""
        if self._cache and (cached := self._tokens.get(token_hash)) is not None:
            found: Principal = cached[0]
            return found
        name = self._token_name(token_hash)
        return self._remember(token_hash, name, self._r.get(name))

    async def principal_async(self, token_hash: str) -> Principal | None:
        """`principal` on the event loop: a token not cached (most of them, in a city where
        each visitor checks in a few times a day) is an awaited read, and concurrent ones of
        this worker share one round trip."""
        if self._cache and (cached := self._tokens.get(token_hash)) is not None:
            found: Principal = cached[0]
            return found
        if self._loop_clients is None:
            return self.principal(token_hash)
        name = self._token_name(token_hash)
        return self._remember(token_hash, name, await self._token_reads.ask(name))

    async def _read_tokens(self, names: list[str]) -> list[bytes | str | None]:
        assert self._loop_clients is not None
        client = self._loop_clients.client()
        raws: list[bytes | str | None] = await client.mget(names)
        return raws

    def _remember(self, token_hash: str, name: str, raw: bytes | str | None) -> Principal | None:
        if raw is None:
            return None
        principal = self._records.open(name, raw, _principal, "token")
        if self._cache and principal is not None:
            self._tokens.put(token_hash, (principal, self._pseudonyms.of(principal.id)))
        return principal

    def venue(self, venue_id: UUID) -> VenueView | None:
        """One venue."""
        key = str(venue_id)
        if self._cache and (cached := self._venues.get(key)) is not None:
            found: VenueView = cached[0]
            return found
        pseudonym = self._pseudonyms.of(venue_id)
        raw, version = self._r.mget([f"{self._p}venue:{pseudonym}", f"{self._p}vcode:{pseudonym}"])
        venue = self._venue(pseudonym, raw, version)
        if self._cache and venue is not None:
            self._venues.put(key, (venue, pseudonym))
        return venue

    def _venue(self, pseudonym: str, raw: Any, version: Any) -> VenueView | None:
        """A venue's record with its current code version, both authentic, or None."""
        if raw is None:
            return None
        venue = self._records.open(f"{self._p}venue:{pseudonym}", raw, _venue, "venue")
        if venue is None or version is None:
            return venue
        code_version = self._records.open(f"{self._p}vcode:{pseudonym}", version, _version, "venue")
        if code_version is None:
            return None
        return msgspec.structs.replace(venue, code_version=code_version)

    def venues_of(self, merchant_id: UUID) -> list[VenueView]:
        """A merchant's venues, oldest first."""
        venues = texts(self._r.zrange(self._records.name("mvenues", merchant_id), 0, -1))
        if not venues:
            return []
        names = [f"{self._p}{kind}:{v}" for v in venues for kind in ("venue", "vcode")]
        raws = self._r.mget(names)
        found = (self._venue(v, raws[2 * i], raws[2 * i + 1]) for i, v in enumerate(venues))
        # An entry moved here from another merchant's list names its true owner.
        return [v for v in found if v is not None and v.merchant_id == merchant_id]

    def visitor(self, visitor_id: UUID) -> VisitorView | None:
        """One visitor."""
        name = self._records.name("visitor", visitor_id)
        raw = self._r.get(name)
        if raw is None:
            return None
        try:
            stored = _stored_visitor.decode(raw)
        except msgspec.DecodeError:
            refused("visitor")
            return None
        return self._records.open_text(name, stored.view, _visitor, "visitor")

    def dependent(self, visitor: VisitorView, name: str) -> UUID | None:
        """The visitor's dependent registered under this name."""
        return visitor.dependents.get(self._pseudonyms.name(visitor.visitor_id, name))

    def visitors_by_phone(self, phone_index: str) -> list[UUID]:
        """Visitors registered with a phone."""
        name = f"{self._p}phone:{self._pseudonyms.phone(phone_index)}"
        found: list[UUID] = []
        for field, raw in self._r.hgetall(name).items():
            entry = f"{name}#{texts([field])[0]}"
            visitor_id = self._records.open(entry, raw, _id, "phone")
            if visitor_id is not None:
                found.append(visitor_id)
        return sorted(found)

    def guardian_of(self, person_id: UUID) -> UUID | None:
        """The registered visitor a person belongs to."""
        name = self._records.name("guardian", person_id)
        raw = self._r.get(name)
        return None if raw is None else self._records.open(name, raw, _id, "guardian")

    def agency(self, agency_id: UUID) -> AgencyView | None:
        """One agency."""
        name = self._records.name("agency", agency_id)
        raw = self._r.get(name)
        return None if raw is None else self._records.open(name, raw, _agency, "agency")
