"""Redis read models (the production deployment): the read side of the ports.

The projection (`redis_projection.py`) writes these keys; every worker reads them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import redis

from domain.ports import AgencyView, ExposureView, Principal, VenueView, VisitorView, VisitView
from domain.tracing import Stay, effective_end
from infrastructure.readmodels.redis_projection import RedisProjector, StoredVisit, epoch

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


class RedisDirectory:
    """Tokens, visitors, venues and agencies in Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._p = prefix

    def principal(self, token_hash: str) -> Principal | None:
        """Whose token this is."""
        raw = self._r.get(f"{self._p}tok:{token_hash}")
        return None if raw is None else _principal.decode(raw)

    def venue(self, venue_id: UUID) -> VenueView | None:
        """One venue."""
        raw = self._r.get(f"{self._p}venue:{venue_id}")
        return None if raw is None else _venue.decode(raw)

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

    def __init__(self, client: redis.Redis, prefix: str, projector: RedisProjector) -> None:
        self._r = client
        self._p = prefix
        self._projector = projector

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
        """Open visits of one person."""
        ids = self._r.smembers(f"{self._p}open:{visitor_id}")
        return [as_view(v) for v in self._visits(ids) if v.checked_out_at is None]

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
