"""Redis read models of merchants' notices and regions' risk levels, each record sealed.

Notices of a venue are a list under `ntc:<venue pseudonym>`, each sealed under that name:
someone who can write to Redis but holds no key can neither forge a notice nor move one to
another venue (the reader refuses it). Levels are under `risk:<region code>` (codes are public),
sealed too, and each worker keeps them a while: a check-in answer carries one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import redis
from eventsourcing.domain import DomainEventProtocol

from domain.outreach_ports import NoticeView, RiskView
from domain.risk import RegionRisk
from infrastructure.readmodels.redis.records import RedisRecords

_notice = msgspec.msgpack.Decoder(NoticeView)
_risk = msgspec.msgpack.Decoder(RiskView)


class RedisNoticeLog:
    """Notices by venue, in Redis."""

    def __init__(self, client: redis.Redis, records: RedisRecords) -> None:
        self._r = client
        self._records = records

    def _of(self, venue_id: UUID) -> list[NoticeView]:
        name = self._records.name("ntc", venue_id)
        found = (
            self._records.open(name, raw, _notice, "notice") for raw in self._r.lrange(name, 0, -1)
        )
        return sorted(
            (n for n in found if n is not None and n.venue_id == venue_id),
            key=lambda n: (n.sent_at, n.notice_id),
        )

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[NoticeView]:
        """Notices of a venue whose window overlaps [start, end], oldest first."""
        return [n for n in self._of(venue_id) if n.start <= end and start <= n.end]

    def sent_since(self, venue_id: UUID, since: datetime) -> int:
        """How many notices the venue sent at or after `since`."""
        return sum(1 for n in self._of(venue_id) if n.sent_at >= since)


class RedisRiskLevels:
    """Regions' levels in Redis, kept by each worker a while and dropped at once on a change
    (the projection announces it on `changed`, or this worker wrote it)."""

    def __init__(self, client: redis.Redis, records: RedisRecords, cache_seconds: float) -> None:
        self._r = client
        self._records = records
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, RiskView | None]] = {}

    def own(self, regions: Sequence[str]) -> list[RiskView | None]:
        """The level set for each region, None where none was."""
        now = time.monotonic()
        cached = [self._cache.get(region) for region in regions]
        if all(entry is not None and entry[0] > now for entry in cached):
            return [entry[1] for entry in cached if entry is not None]
        names = [self._name(region) for region in regions]
        raws = self._r.mget(names)
        found = [self._open(name, raw) for name, raw in zip(names, raws, strict=True)]
        if self._ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            for region, risk in zip(regions, found, strict=True):
                self._cache[region] = (now + self._ttl, risk)
        return found

    def _name(self, region: str) -> str:
        return f"{self._records.prefix}risk:{region}"

    def _open(self, name: str, raw: Any) -> RiskView | None:
        return None if raw is None else self._records.open(name, raw, _risk, "risk")

    def changed(self, what: str) -> None:
        """Forget a region whose level changed (`risk:CODE`)."""
        kind, _, region = what.partition(":")
        if kind == "risk":
            self._cache.pop(region, None)

    def forget_all(self) -> None:
        """Forget every cached level (after missed change messages)."""
        self._cache.clear()

    def written(self, events: list[DomainEventProtocol[UUID]]) -> None:
        """This worker's own changes: forget them before it answers (read-your-writes)."""
        for event in events:
            if isinstance(event, RegionRisk.LevelSet):
                self._cache.pop(event.region, None)
