"""Redis read models (the production deployment): the read side of the ports.

The projection (`redis_projection.py`) writes these keys; every worker reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import redis
from eventsourcing.domain import DomainEventProtocol

from domain.people import Visitor
from domain.ports import (
    AgencyView,
    ExposureView,
    Principal,
    Seen,
    VenueView,
    VisitorView,
    VisitView,
)
from domain.tracing import Stay, effective_end
from domain.venues import Venue
from infrastructure.readmodels.redis_projection import (
    LOOK_SCRIPT,
    LOOK_SHA,
    RedisProjector,
    StoredVisit,
    epoch,
)
from infrastructure.redis_loop import Gathered, LoopClients

DAY_SECONDS = 86_400
# A stay is looked up by its start; none lasts longer than this (maximum dwell is at most a day,
# and check-outs after it are closed automatically at in + max dwell).
LONGEST_STAY = timedelta(days=3)

_principal = msgspec.json.Decoder(Principal)
_venue = msgspec.json.Decoder(VenueView)
_visitor = msgspec.json.Decoder(VisitorView)
_agency = msgspec.json.Decoder(AgencyView)
_visit = msgspec.json.Decoder(StoredVisit)
_exposure = msgspec.json.Decoder(ExposureView)


def _texts(items: Any) -> list[str]:
    """Redis replies (bytes) as text."""
    return [i.decode() if isinstance(i, bytes) else str(i) for i in items]


def as_view(v: StoredVisit) -> VisitView:
    """The port's view of a stored visit."""
    return VisitView(
        visit_id=v.visit_id,
        visitor_id=v.visitor_id,
        guardian_id=v.guardian_id,
        venue_id=v.venue_id,
        checked_in_at=v.checked_in_at,
        via=v.via,
        checked_out_at=v.checked_out_at,
        checkout_reason=v.checkout_reason,
    )


# One check-in's look: the people whose open visits it needs, and a visit by id (or None).
_Look = tuple[Sequence[UUID], UUID | None]


def _seen(looks: list[_Look], replies: list[Any]) -> list[Seen]:
    """Split the LOOK script's replies into what each look asked for."""
    at = len(looks)
    answers: list[Seen] = []
    for i, (people, _) in enumerate(looks):
        visit = None if replies[i] is None else as_view(_visit.decode(replies[i]))
        found: dict[UUID, list[VisitView]] = {}
        for person in people:
            count = int(replies[at])
            raws = replies[at + 1 : at + 1 + count]
            at += 1 + count
            visits = (_visit.decode(raw) for raw in raws if raw is not None)
            found[person] = [as_view(v) for v in visits if v.checked_out_at is None]
        answers.append(Seen(open_visits=found, visit=visit))
    return answers


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
    """Tokens, visitors, venues and agencies in Redis.

    Tokens and venues are read on every check-in and change rarely: each worker keeps them a
    few seconds, and drops them at once when the runner announces an erasure or a code
    rotation (`changed` below, fed by Redis pub/sub).
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        cache_seconds: float = 0.0,
        loop_clients: LoopClients | None = None,
    ) -> None:
        self._r = client
        self._p = prefix
        self._tokens = _Cache(cache_seconds)
        self._venues = _Cache(cache_seconds)
        self._cache = cache_seconds > 0
        self._loop_clients = loop_clients
        self._token_reads: Gathered[str, bytes | str | None] = Gathered(self._read_tokens)

    def changed(self, what: str) -> None:
        """Forget cached entries of a principal or venue that changed (`principal:ID`)."""
        kind, _, ident = what.partition(":")
        if kind == "principal":
            self._tokens.drop_where(lambda p: p is not None and str(p.id) == ident)
        elif kind == "venue":
            self._venues.drop_where(lambda v: v is not None and str(v.venue_id) == ident)

    def forget_all(self) -> None:
        """Drop every cached token and venue (after missed change messages)."""
        self._tokens.clear()
        self._venues.clear()

    def written(self, events: list[DomainEventProtocol[UUID]]) -> None:
        """This process's own changes: refresh its cache before it answers (read-your-writes)."""
        for event in events:
            if isinstance(event, Venue.CodeRotated):
                self.changed(f"venue:{event.originator_id}")
            elif isinstance(event, Visitor.Erased):
                self.changed(f"principal:{event.originator_id}")

    def principal(self, token_hash: str) -> Principal | None:
        """Whose token this is."""
        if self._cache and (cached := self._tokens.get(token_hash)) is not None:
            found: Principal = cached
            return found
        return self._remember(token_hash, self._r.get(f"{self._p}tok:{token_hash}"))

    async def principal_async(self, token_hash: str) -> Principal | None:
        """`principal` on the event loop: a token not cached (most of them, in a city where
        each visitor checks in a few times a day) is an awaited read, and concurrent ones of
        this worker share one round trip."""
        if self._cache and (cached := self._tokens.get(token_hash)) is not None:
            found: Principal = cached
            return found
        if self._loop_clients is None:
            return self.principal(token_hash)
        return self._remember(token_hash, await self._token_reads.ask(token_hash))

    async def _read_tokens(self, hashes: list[str]) -> list[bytes | str | None]:
        assert self._loop_clients is not None
        client = self._loop_clients.client()
        raws: list[bytes | str | None] = await client.mget([f"{self._p}tok:{h}" for h in hashes])
        return raws

    def _remember(self, token_hash: str, raw: bytes | str | None) -> Principal | None:
        principal = None if raw is None else _principal.decode(raw)
        if self._cache and principal is not None:
            self._tokens.put(token_hash, principal)
        return principal

    def venue(self, venue_id: UUID) -> VenueView | None:
        """One venue."""
        key = str(venue_id)
        if self._cache and (cached := self._venues.get(key)) is not None:
            found: VenueView = cached
            return found
        raw = self._r.get(f"{self._p}venue:{venue_id}")
        venue = None if raw is None else _venue.decode(raw)
        if self._cache and venue is not None:
            self._venues.put(key, venue)
        return venue

    def venues_of(self, merchant_id: UUID) -> list[VenueView]:
        """A merchant's venues, oldest first."""
        ids = _texts(self._r.zrange(f"{self._p}mvenues:{merchant_id}", 0, -1))
        if not ids:
            return []
        raws = self._r.mget([f"{self._p}venue:{i}" for i in ids])
        return [_venue.decode(raw) for raw in raws if raw is not None]

    def visitor(self, visitor_id: UUID) -> VisitorView | None:
        """One visitor."""
        raw = self._r.get(f"{self._p}visitor:{visitor_id}")
        return None if raw is None else _visitor.decode(raw)

    def visitors_by_phone(self, phone_index: str) -> list[UUID]:
        """Visitors registered with a phone."""
        return [UUID(i) for i in _texts(self._r.lrange(f"{self._p}phone:{phone_index}", 0, -1))]

    def guardian_of(self, person_id: UUID) -> UUID | None:
        """The registered visitor a person belongs to."""
        raw = self._r.get(f"{self._p}guardian:{person_id}")
        return None if raw is None else UUID(_texts([raw])[0])

    def agency(self, agency_id: UUID) -> AgencyView | None:
        """One agency."""
        raw = self._r.get(f"{self._p}agency:{agency_id}")
        return None if raw is None else _agency.decode(raw)


class RedisVisitLog:
    """Visits by id, guardian and venue, open ones and their deadlines, in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        projector: RedisProjector,
        loop_clients: LoopClients | None = None,
    ) -> None:
        self._r = client
        self._p = prefix
        self._projector = projector
        self._loop_clients = loop_clients
        self._look = client.register_script(LOOK_SCRIPT)
        self._looks: Gathered[_Look, Seen] = Gathered(self._look_all)

    def _visits(self, replies: Any) -> list[StoredVisit]:
        ids = _texts(replies)
        if not ids:
            return []
        raws = self._r.mget([f"{self._p}visit:{i}" for i in ids])
        return [_visit.decode(raw) for raw in raws if raw is not None]

    def get(self, visit_id: UUID) -> VisitView | None:
        """One visit."""
        raw = self._r.get(f"{self._p}visit:{visit_id}")
        return None if raw is None else as_view(_visit.decode(raw))

    def _range(self, key: str, start: datetime, end: datetime) -> list[VisitView]:
        ids = self._r.zrangebyscore(key, epoch(start), f"({epoch(end)!r}")
        visits = [as_view(v) for v in self._visits(ids)]
        return sorted(
            (v for v in visits if start <= v.checked_in_at < end),
            key=lambda v: (v.checked_in_at, v.visit_id),
        )

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and dependents that began in [start, end), oldest first."""
        return self._range(f"{self._p}gvisits:{guardian_id}", start, end)

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person (one round trip)."""
        replies = self._look(keys=[f"{self._p}open:{visitor_id}"], args=[self._p, ""])
        return _seen([([visitor_id], None)], replies)[0].open_visits[visitor_id]

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people and one visit, awaited; concurrent looks of this
        worker share one round trip."""
        return await self._looks.ask((people, visit_id))

    async def _look_all(self, looks: list[_Look]) -> list[Seen]:
        assert self._loop_clients is not None, "built without clients for the event loop"
        client = self._loop_clients.client()
        keys = [f"{self._p}open:{person}" for people, _ in looks for person in people]
        args = [self._p, *("" if visit_id is None else str(visit_id) for _, visit_id in looks)]
        try:
            replies = await client.evalsha(LOOK_SHA, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # a restarted Redis: send it the script itself
            replies = await client.eval(LOOK_SCRIPT, len(keys), *keys, *args)
        return _seen(looks, replies)

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        return self._range(f"{self._p}vvisits:{venue_id}", start, end)

    def occupancy(self, venue_id: UUID) -> int:
        """Open visits at a venue."""
        raw = self._r.get(f"{self._p}occ:{venue_id}")
        return int(raw) if raw else 0

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits past their deadline, earliest first."""
        ids = self._r.zrangebyscore(f"{self._p}due", "-inf", epoch(now), start=0, num=limit)
        return [as_view(v) for v in self._visits(ids) if v.checked_out_at is None]

    def drop_before(self, cutoff: datetime) -> int:
        """Retention: drop visits that began before the cutoff."""
        return self._projector.drop_before(cutoff)


class RedisContactIndex:
    """Stays by (venue, UTC day) and by person, for contact tracing, in Redis."""

    def __init__(self, client: redis.Redis, prefix: str, projector: RedisProjector) -> None:
        self._r = client
        self._p = prefix
        self._projector = projector

    def _stays(self, replies: Any, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        ids = list(dict.fromkeys(_texts(replies)))
        if not ids:
            return []
        raws = self._r.mget([f"{self._p}visit:{i}" for i in ids])
        stays: list[Stay] = []
        for raw in raws:
            if raw is None:
                continue
            v = _visit.decode(raw)
            end = effective_end(
                v.checked_in_at, v.checked_out_at, timedelta(seconds=v.max_dwell_s), now
            )
            if v.checked_in_at <= t1 and end >= t0:
                stays.append(
                    Stay(
                        visit_id=v.visit_id,
                        visitor_id=v.visitor_id,
                        venue_id=v.venue_id,
                        start=v.checked_in_at,
                        end=end,
                    )
                )
        stays.sort(key=lambda s: (s.start, s.visit_id))
        return stays

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays at a venue intersecting [t0, t1]."""
        first, last = int(epoch(t0) // DAY_SECONDS), int(epoch(t1) // DAY_SECONDS)
        pipe = self._r.pipeline(transaction=False)
        for day in range(first, last + 1):
            pipe.zrangebyscore(f"{self._p}ci:{venue_id}:{day}", "-inf", epoch(t1))
        ids = [i for found in pipe.execute() for i in found]
        return self._stays(ids, t0, t1, now)

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1]."""
        upper = "+inf" if t1 >= datetime.max.replace(tzinfo=t1.tzinfo) else epoch(t1)
        ids = self._r.zrangebyscore(
            f"{self._p}pvisits:{visitor_id}", epoch(t0 - LONGEST_STAY), upper
        )
        return self._stays(ids, t0, t1, now)

    def drop_before(self, cutoff: datetime) -> int:
        """Retention (shared with the visit log: one structure)."""
        return self._projector.drop_before(cutoff)


class RedisExposureLog:
    """Declared exposures by venue, in Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._p = prefix

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures at a venue overlapping [start, end]."""
        raws = self._r.lrange(f"{self._p}exp:{venue_id}", 0, -1)
        exposures = [_exposure.decode(raw) for raw in raws]
        return [e for e in exposures if e.start <= end and start <= e.end]
