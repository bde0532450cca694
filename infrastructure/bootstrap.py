"""The composition root: build the application, its stores, keys and read models from settings.

Two deployments from one code base:
- embedded (default): SQLite log, keys and audit in the data folder; memory read models rebuilt
  from the log at start; the projection runs in-process.
- production: `FANGXIN_DATABASE_URL=postgresql://...` puts the log, keys and audit trail in
  PostgreSQL; `FANGXIN_REDIS_URL` puts the read models in Redis, projected by one elected
  runner per deployment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Recording

from domain.app import Fangxin
from domain.cases import CasePolicy
from domain.casework import ADMIN_ACTOR, Casework
from domain.ports import AuditRecord, Clock, Ports
from infrastructure.audit.chain import AuditLog
from infrastructure.audit.postgres import PostgresAuditLog
from infrastructure.audit.sqlite import SQLiteAuditLog
from infrastructure.audit.trail import DurableAuditTrail
from infrastructure.eventstore.environment import blame_duplicate, event_store_env
from infrastructure.eventstore.group_commit import GroupCommit, OnSaved
from infrastructure.eventstore.mapper import ScopedCipherMapper
from infrastructure.eventstore.store import EventLog, LogStore
from infrastructure.files import close_folder
from infrastructure.history.port import History
from infrastructure.history.postgres import PostgresHistory
from infrastructure.history.reset import reset_postgres
from infrastructure.history.sqlite_open import HistoryFile
from infrastructure.keys.crypto import TokenCredentials, VenueCodeSigner
from infrastructure.keys.keystore import KeyBackend, KeyStore
from infrastructure.keys.masterkeys import MASTER_KEY_FILE, MasterKeyFile, MasterKeys
from infrastructure.keys.postgres import PostgresKeyBackend
from infrastructure.keys.sqlite import SQLiteKeyBackend
from infrastructure.ops.admin import AdminTokens
from infrastructure.ops.duties import KeyCompaction
from infrastructure.ops.regions import national_regions
from infrastructure.outreach import embedded_outreach, production_outreach
from infrastructure.projections.history_follower import FollowedElsewhere, HistoryFollower
from infrastructure.projections.redis_runner import RedisProjectionRunner
from infrastructure.projections.resume import resume
from infrastructure.projections.runner import ProjectionRunner, Runner
from infrastructure.readmodels.history_reads import HistoryContactIndex, HistoryExposureLog
from infrastructure.readmodels.history_visits import HistoryVisitLog
from infrastructure.readmodels.memory.answers import MemoryAnswerStore
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.open_visits import MemoryOpenVisits
from infrastructure.readmodels.memory.projection import ReadModelProjector
from infrastructure.readmodels.memory.roster import MemoryRoster
from infrastructure.readmodels.records import Pseudonyms, Seals
from infrastructure.readmodels.redis.answers import RedisAnswerStore
from infrastructure.readmodels.redis.cluster import open_client
from infrastructure.readmodels.redis.directory import RedisDirectory
from infrastructure.readmodels.redis.feed import RedisFeed
from infrastructure.readmodels.redis.loop import LoopClients
from infrastructure.readmodels.redis.projection import RedisProjector
from infrastructure.readmodels.redis.records import RedisRecords
from infrastructure.readmodels.redis.roster import RedisRoster
from infrastructure.readmodels.redis.visits import RedisVisitLog
from infrastructure.services import RandomIds, Services, SystemClock
from infrastructure.settings import Settings

# How long a worker may keep a token or a venue it read from Redis. Erasures and code rotations
# reach every worker at once over pub/sub, and a worker whose subscription dropped (and so may
# have missed one) drops its caches when it subscribes again; this only bounds the rest.
CACHE_SECONDS = 60.0


def group_commit(
    settings: Settings,
    log: EventLog,
    on_saved: OnSaved | None = None,
    settle: Callable[[list[Recording[UUID]]], None] | None = None,
) -> GroupCommit:
    """Gather concurrent writes of this process into shared transactions."""
    return GroupCommit(
        log.record,
        max_batch=settings.group_commit_max,
        max_wait=settings.group_commit_wait,
        on_saved=on_saved,
        blame=blame_duplicate,
        settle=settle,
    )


def casework_of(app: Fangxin, audit: AuditLog, settings: Settings) -> Casework:
    """Agencies' work, recording into the audit store itself (never derived from the log)."""
    policy = CasePolicy(
        retention=timedelta(days=settings.retention_days),
        lifetime=timedelta(days=settings.case_lifetime_days),
    )
    return Casework(app, DurableAuditTrail(audit), policy)


def admin_tokens(settings: Settings, keys: KeyStore, audit: AuditLog, clock: Clock) -> AdminTokens:
    """The admin's token, each new one audited before it is made."""
    trail = DurableAuditTrail(audit)

    def record_issue() -> None:
        trail.record(
            AuditRecord(
                at=clock.now(),
                actor=ADMIN_ACTOR,
                action="issue admin token",
                ref=f"admin-token:{uuid.uuid4()}",
            )
        )

    return AdminTokens(keys.backend, settings.admin_token, before_issue=record_issue)


def open_key_backend(settings: Settings) -> KeyBackend:
    """The key store's backend for the configured deployment."""
    if settings.uses_postgres:
        return PostgresKeyBackend(settings.pg_dsn)
    return SQLiteKeyBackend(Path(settings.data_dir) / "keys.db")


def open_keys(settings: Settings) -> KeyStore:
    """The key store, under `FANGXIN_MASTER_KEY` or else the data folder's master key file
    (made at first start), which it follows as `fangxin keys` commands replace it."""
    data = Path(settings.data_dir)
    master = MasterKeys.load_or_create(settings.master_key, data)
    follow = None if settings.master_key else MasterKeyFile(data / MASTER_KEY_FILE).read
    return KeyStore(open_key_backend(settings), master, follow=follow)


def open_audit(settings: Settings, keys: KeyStore) -> AuditLog:
    """The audit store of the configured deployment."""
    audit_key = keys.service_key("audit-chain")
    if settings.uses_postgres:
        return PostgresAuditLog(settings.pg_dsn, audit_key)
    return SQLiteAuditLog(Path(settings.data_dir) / "audit.db", audit_key)


class _Sync:
    """Read-your-writes through whichever runner the process has."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def written(self, recordings: list[Recording[UUID]]) -> None:
        self.runner.written(recordings)

    async def written_async(self, recordings: list[Recording[UUID]]) -> None:
        # The group commit answers once its batch is projected, so this is a check, not a
        # wait; only if that projection failed does a thread wait for the runner.
        if not recordings or self.runner.has_applied(max(r.notification.id for r in recordings)):
            self.runner.written(recordings)
        else:
            await asyncio.to_thread(self.runner.written, recordings)


@dataclass
class _Shared:
    """What both deployments are built on: keys, audit, the event log and the ports' clock,
    ids, signers and regions."""

    settings: Settings
    keys: KeyStore
    mapper: ScopedCipherMapper
    audit: AuditLog
    admin: AdminTokens
    compaction: KeyCompaction
    log: EventLog
    common: dict[str, Any]
    create_tables: bool = True

    def application(
        self, ports: Ports, runner: Runner, committer: GroupCommit
    ) -> tuple[LogStore, Fangxin]:
        """The store given its runner and group commit, and the application over it."""
        store = LogStore(self.log, _Sync(runner), committer)
        return store, Fangxin(ports, store)

    def services(
        self,
        store: LogStore,
        app: Fangxin,
        runner: Runner,
        committer: GroupCommit,
        **rest: Any,
    ) -> Services:
        """Everything the process runs with."""
        return Services(
            settings=self.settings,
            app=app,
            store=store,
            casework=casework_of(app, self.audit, self.settings),
            runner=runner,
            keys=self.keys,
            directory=app.ports.directory,
            visits=app.ports.visits,
            audit=self.audit,
            admin=self.admin,
            committer=committer,
            compaction=self.compaction,
            **rest,
        )


def build_services(
    settings: Settings,
    clock: Clock | None = None,
    replay: bool = True,
    create_tables: bool = True,
) -> Services:
    """Wire the deployment the settings describe (embedded: replay the log into memory)."""
    close_folder(Path(settings.data_dir))
    keys = open_keys(settings)
    compaction = KeyCompaction(keys.backend.compact)
    # Soon after a key is destroyed, what it left in the store's files goes too.
    keys.on_destroy.append(compaction.soon)
    mapper = ScopedCipherMapper(keys)
    # A destroyed key must leave memory too, in the derived keys of the mapper's cache.
    keys.on_destroy.append(mapper.forget)
    audit = open_audit(settings, keys)
    clock_ = clock or SystemClock()
    shared = _Shared(
        settings=settings,
        keys=keys,
        mapper=mapper,
        audit=audit,
        admin=admin_tokens(settings, keys, audit, clock_),
        compaction=compaction,
        log=EventLog(event_store_env(settings, create_tables), mapper),
        create_tables=create_tables,
        common={
            "clock": clock_,
            "ids": RandomIds(),
            "credentials": TokenCredentials(keys.service_key("phone-index")),
            "codes": VenueCodeSigner(keys.service_key("venue-codes")),
            "keys": keys,
            "regions": national_regions(),
        },
    )
    if settings.redis_url:
        return _production(shared)
    return _embedded(shared, replay)


def _embedded(shared: _Shared, replay: bool) -> Services:
    """Memory keeps what is hot, the history the rest; a start resumes both from the history's
    position rather than replaying the log (issue 21)."""
    settings, mapper = shared.settings, shared.mapper
    dwell = settings.default_max_dwell_minutes
    file = HistoryFile(shared.log.recorder, mapper, shared.keys, settings.data_path, dwell)
    history = file.current
    directory, hot, roster = MemoryDirectory(), MemoryOpenVisits(), MemoryRoster()
    ports = Ports(
        directory=directory,
        visits=HistoryVisitLog(hot, history),
        contacts=HistoryContactIndex(history),
        exposures=HistoryExposureLog(history),
        roster=roster,
        **shared.common,
    )
    projector = ReadModelProjector(directory, hot, None, None, dwell, roster)
    runner = ProjectionRunner(shared.log.recorder, mapper, [projector])
    committer = group_commit(settings, shared.log, on_saved=runner.apply_own)
    store, app = shared.application(ports, runner, committer)
    # Notices, risk levels and accesses: projected by the same runner, so added before it replays.
    outreach = embedded_outreach(
        app, DurableAuditTrail(shared.audit), directory, runner, settings.retention_days
    )
    if replay:
        resume(history, runner, hot, directory, dwell)
    newest = shared.log.recorder.max_notification_id
    follower = HistoryFollower(history, lambda: newest() or 0, fresh=file.fresh)
    return shared.services(
        store,
        app,
        runner,
        committer,
        answers=MemoryAnswerStore(),
        on_exposure=projector.on_exposure,
        new_admin_token=shared.admin.first_start(),
        outreach=outreach,
        history=follower,
        # The follower stops before the history's file closes.
        _closers=[committer.close, follower.stop, file.close],
    )


def _production(shared: _Shared) -> Services:
    settings, keys, mapper = shared.settings, shared.keys, shared.mapper
    client = open_client(settings.redis_url, settings.redis_cluster)
    prefix = settings.redis_prefix
    # Keys Redis never holds: key names are pseudonyms under one, records sealed under another.
    records = RedisRecords(
        prefix,
        Pseudonyms(keys.service_key("redis-names")),
        Seals(keys.service_key("redis-records")),
    )
    projector = RedisProjector(client, records, settings.default_max_dwell_minutes)
    loop_clients = LoopClients(settings.redis_url, settings.redis_cluster)
    directory = RedisDirectory(
        client, records, cache_seconds=CACHE_SECONDS, loop_clients=loop_clients
    )
    # Redis keeps what is hot; visits, stays and exposures are read from the history (issue 21).
    history = production_history(shared.log, keys, settings, shared.create_tables)
    ports = Ports(
        directory=directory,
        visits=RedisVisitLog(client, records, projector, history, loop_clients),
        contacts=HistoryContactIndex(history),
        exposures=HistoryExposureLog(history),
        roster=RedisRoster(client, records),
        **shared.common,
    )
    runner = RedisProjectionRunner(
        shared.log.recorder, mapper, projector, client, also=[], on_written=[directory.written]
    )
    committer = group_commit(
        settings, shared.log, on_saved=runner.send_own, settle=runner.own_applied
    )
    feed = RedisFeed(client, records)
    # Erasure in one worker must reach every worker's key cache at once.
    keys.on_destroy.append(feed.publish_shredded)
    feed.on_shredded(keys.forget)
    feed.on_shredded(mapper.forget)
    feed.on_changed(directory.changed)
    feed.on_position(runner.announced)
    for forget_all in (directory.forget_all, keys.forget_all, mapper.forget_all):
        feed.on_subscribed(forget_all)
    store, app = shared.application(ports, runner, committer)
    # Notices, risk levels and accesses, and what this worker must forget of its own writes.
    outreach, outreach_written = production_outreach(
        app,
        DurableAuditTrail(shared.audit),
        client,
        records,
        directory,
        feed,
        CACHE_SECONDS,
        settings.retention_days,
    )
    runner.on_written.append(outreach_written)
    feed.start()
    return shared.services(
        store,
        app,
        runner,
        committer,
        answers=RedisAnswerStore(client, prefix, keys.service_key("answer-cache")),
        on_exposure=feed.on_exposure,
        new_admin_token=None,
        outreach=outreach,
        redis=client,
        loop_clients=loop_clients,
        history=history_follower(shared.log, keys, settings, history, here=False),
        _closers=[feed.stop, committer.close],
    )


def production_history(
    log: EventLog, keys: KeyStore, settings: Settings, create_tables: bool
) -> PostgresHistory:
    """The history of the production deployment: day partitions in the log's own database,
    in tables of its own (made by `fangxin migrate`, or by a deployment that makes its own)."""
    return PostgresHistory(
        log.recorder,
        log.mapper,
        keys,
        create_tables=create_tables,
        default_max_dwell_minutes=settings.default_max_dwell_minutes,
    )


def history_follower(
    log: EventLog, keys: KeyStore, settings: Settings, history: History, here: bool
) -> HistoryFollower:
    """Catches the history up (`here`: on a thread of this process, as `fangxin follow` does;
    otherwise an HTTP worker's watch of the process that does, ADR 0014); `fangxin rebuild`
    makes it afresh."""
    recorder: Any = log.recorder

    def fresh() -> History:
        reset_postgres(recorder.datastore)
        return production_history(log, keys, settings, create_tables=True)

    def newest() -> int:
        return recorder.max_notification_id() or 0

    if here:
        return HistoryFollower(history, newest, fresh=fresh)
    return FollowedElsewhere(history, newest, fresh, settings.history_stalled_seconds)
