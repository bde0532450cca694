"""Redis read models of contact tracing: stays by venue and day and by person, and exposures.

Like the visit log (`redis.py`), these read index entries (visit pseudonyms) and keep only the
visits whose sealed record says they belong where they were found.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import redis

from domain.ports import ExposureView, VisitView
from domain.tracing import Stay, effective_end
from infrastructure.readmodels.redis.args import epoch
from infrastructure.readmodels.redis.projection import RedisProjector
from infrastructure.readmodels.redis.records import RedisRecords, read_visits

DAY_SECONDS = 86_400
# A stay is looked up by its start; none lasts longer than this (maximum dwell is at most a day,
# and check-outs after it are closed automatically at in + max dwell).
LONGEST_STAY = timedelta(days=3)

_exposure = msgspec.msgpack.Decoder(ExposureView)


class RedisContactIndex:
    """Stays by (venue, UTC day) and by person, for contact tracing, in Redis."""

    def __init__(
        self, client: redis.Redis, records: RedisRecords, projector: RedisProjector
    ) -> None:
        self._r = client
        self._records = records
        self._projector = projector

    def _stays(
        self,
        replies: Any,
        t0: datetime,
        t1: datetime,
        now: datetime,
        test: Callable[[VisitView], bool],
    ) -> list[Stay]:
        stays: list[Stay] = []
        for found in read_visits(self._r, self._records, replies):
            v = found.view
            end = effective_end(
                v.checked_in_at, v.checked_out_at, timedelta(seconds=found.max_dwell_s), now
            )
            if v.checked_in_at <= t1 and end >= t0 and test(v):
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
        venue = self._records.name("ci", venue_id)
        pipe = self._r.pipeline(transaction=False)
        for day in range(first, last + 1):
            pipe.zrangebyscore(f"{venue}:{day}", "-inf", epoch(t1))
        ids = [i for found in pipe.execute() for i in found]
        return self._stays(ids, t0, t1, now, lambda v: v.venue_id == venue_id)

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1]."""
        upper = "+inf" if t1 >= datetime.max.replace(tzinfo=t1.tzinfo) else epoch(t1)
        ids = self._r.zrangebyscore(
            self._records.name("pvisits", visitor_id), epoch(t0 - LONGEST_STAY), upper
        )
        return self._stays(ids, t0, t1, now, lambda v: v.visitor_id == visitor_id)

    def drop_before(self, cutoff: datetime) -> int:
        """Retention (shared with the visit log: one structure)."""
        return self._projector.drop_before(cutoff)


class RedisExposureLog:
    """Declared exposures by venue, in Redis."""

    def __init__(self, client: redis.Redis, records: RedisRecords) -> None:
        self._r = client
        self._records = records

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures at a venue overlapping [start, end]."""
        name = self._records.name("exp", venue_id)
        found = (
            self._records.open(name, raw, _exposure, "exposure")
            for raw in self._r.lrange(name, 0, -1)
        )
        return [
            e
            for e in found
            if e is not None and e.venue_id == venue_id and e.start <= end and start <= e.end
        ]
