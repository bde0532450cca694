"""What issue 19 adds to a process: merchants' notices, regions' risk levels, and a visitor's
view of who read their data, wired for either deployment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import redis
from eventsourcing.domain import DomainEventProtocol

from domain.accesses import Accesses
from domain.app import Fangxin
from domain.notices import Notices
from domain.outreach_ports import NoticeView
from domain.people import Merchant
from domain.ports import AuditTrail
from domain.risk import RiskLevelsService
from infrastructure.projections.runner import ProjectionRunner
from infrastructure.readmodels.memory.accesses import MemoryAccessIndex
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.notice_projection import NoticeProjector
from infrastructure.readmodels.memory.notices import MemoryNoticeLog, MemoryRiskLevels
from infrastructure.readmodels.redis.accesses import RedisAccessIndex
from infrastructure.readmodels.redis.directory import RedisDirectory
from infrastructure.readmodels.redis.feed import RedisFeed
from infrastructure.readmodels.redis.notices import RedisNoticeLog, RedisRiskLevels
from infrastructure.readmodels.redis.records import RedisRecords

OnNotice = Callable[[Callable[[NoticeView], None]], None]


@dataclass
class Outreach:
    """The services of notices, risk levels and accesses, and how to hear of new notices."""

    notices: Notices
    risk: RiskLevelsService
    accesses: Accesses
    on_notice: OnNotice


def embedded_outreach(
    app: Fangxin,
    audit: AuditTrail,
    directory: MemoryDirectory,
    runner: ProjectionRunner,
    retention_days: int,
) -> Outreach:
    """Memory read models, projected by the process's runner (add before it replays)."""
    notices, risks, accesses = MemoryNoticeLog(), MemoryRiskLevels(), MemoryAccessIndex()
    projector = NoticeProjector(directory, notices, risks, accesses)
    runner.add_projector(projector)
    return Outreach(
        notices=Notices(app, notices, retention_days),
        risk=RiskLevelsService(app, audit, risks),
        accesses=Accesses(app, audit, accesses),
        on_notice=projector.on_notice,
    )


def production_outreach(
    app: Fangxin,
    audit: AuditTrail,
    client: redis.Redis,
    records: RedisRecords,
    directory: RedisDirectory,
    feed: RedisFeed,
    cache_seconds: float,
    retention_days: int,
) -> tuple[Outreach, Callable[[list[DomainEventProtocol[UUID]]], None]]:
    """Redis read models (the shared projection writes them), and what this worker must forget
    of its own writes before it answers (a rotated token, a new level)."""
    risks = RedisRiskLevels(client, records, cache_seconds)
    feed.on_changed(risks.changed)
    feed.on_subscribed(risks.forget_all)

    def written(events: list[DomainEventProtocol[UUID]]) -> None:
        risks.written(events)
        for event in events:
            if isinstance(event, Merchant.TokenRotated):
                directory.changed(f"principal:{records.pseudonyms.of(event.originator_id)}")

    outreach = Outreach(
        notices=Notices(app, RedisNoticeLog(client, records), retention_days),
        risk=RiskLevelsService(app, audit, risks),
        accesses=Accesses(app, audit, RedisAccessIndex(client, records)),
        on_notice=feed.on_notice,
    )
    return outreach, written
