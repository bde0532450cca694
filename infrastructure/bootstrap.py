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
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import redis
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
from infrastructure.eventstore.store import LogStore
from infrastructure.files import close_folder
from infrastructure.keys.crypto import TokenCredentials, VenueCodeSigner
from infrastructure.keys.keystore import KeyBackend, KeyStore
from infrastructure.keys.masterkeys import MASTER_KEY_FILE, MasterKeyFile, MasterKeys
from infrastructure.keys.postgres import PostgresKeyBackend
from infrastructure.keys.sqlite import SQLiteKeyBackend
from infrastructure.ops.admin import AdminTokens
from infrastructure.ops.duties import KeyCompaction
from infrastructure.ops.regions import national_regions
from infrastructure.projections.redis_runner import RedisProjectionRunner
from infrastructure.projections.runner import ProjectionRunner, Runner
from infrastructure.readmodels.memory.answers import MemoryAnswerStore
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.projection import ReadModelProjector
from infrastructure.readmodels.memory.roster import MemoryRoster
from infrastructure.readmodels.memory.tracing import MemoryContactIndex, MemoryExposureLog
from infrastructure.readmodels.memory.visits import MemoryVisitLog
from infrastructure.readmodels.records import Pseudonyms, Seals
from infrastructure.readmodels.redis.answers import RedisAnswerStore
from infrastructure.readmodels.redis.directory import RedisDirectory
from infrastructure.readmodels.redis.feed import RedisFeed
from infrastructure.readmodels.redis.loop import LoopClients
from infrastructure.readmodels.redis.projection import RedisProjector
from infrastructure.readmodels.redis.records import RedisRecords
from infrastructure.readmodels.redis.roster import RedisRoster
from infrastructure.readmodels.redis.tracing import RedisContactIndex, RedisExposureLog
from infrastructure.readmodels.redis.visits import RedisVisitLog
from infrastructure.services import RandomIds, Services, SystemClock
from infrastructure.settings import Settings

# How long a worker may keep a token or a venue it read from Redis. Erasures and code rotations
# reach every worker at once over pub/sub, and a worker whose subscription dropped (and so may
# have missed one) drops its caches when it subscribes again; this only bounds the rest.
CACHE_SECONDS = 60.0


def group_commit(
    settings: Settings,
    store: LogStore,
    on_saved: OnSaved | None = None,
    settle: Callable[[list[Recording[UUID]]], None] | None = None,
) -> GroupCommit:
    """Gather concurrent writes of this process into shared transactions."""
    committer = GroupCommit(
        store.record,
        max_batch=settings.group_commit_max,
        max_wait=settings.group_commit_wait,
        on_saved=on_saved,
        blame=blame_duplicate,
        settle=settle,
    )
    store.committer = committer
    return committer


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

    def __init__(self) -> None:
        self.runner: Runner | None = None

    def wait_for(self, position: int) -> None:
        assert self.runner is not None
        self.runner.wait_for(position)

    def written(self, recordings: list[Recording[UUID]]) -> None:
        assert self.runner is not None
        self.runner.written(recordings)

    async def written_async(self, recordings: list[Recording[UUID]]) -> None:
        # The group commit answers once its batch is projected, so this is a check, not a
        # wait; only if that projection failed does a thread wait for the runner.
        assert self.runner is not None
        if not recordings or self.runner.has_applied(max(r.notification.id for r in recordings)):
            self.runner.written(recordings)
        else:
            await asyncio.to_thread(self.runner.written, recordings)


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
    sync = _Sync()
    clock_ = clock or SystemClock()
    common = {
        "clock": clock_,
        "ids": RandomIds(),
        "credentials": TokenCredentials(keys.service_key("phone-index")),
        "codes": VenueCodeSigner(keys.service_key("venue-codes")),
        "keys": keys,
        "regions": national_regions(),
    }
    admin = admin_tokens(settings, keys, audit, clock_)
    env = event_store_env(settings, create_tables)
    if settings.redis_url:
        return _production(settings, env, keys, mapper, audit, admin, sync, common, compaction)
    directory, visits = MemoryDirectory(), MemoryVisitLog()
    contacts, exposures = MemoryContactIndex(), MemoryExposureLog()
    roster = MemoryRoster()
    ports = Ports(
        directory=directory,
        visits=visits,
        contacts=contacts,
        exposures=exposures,
        roster=roster,
        **common,  # type: ignore[arg-type]
    )
    store = LogStore(sync, mapper, env)
    app = Fangxin(ports, store)
    projector = ReadModelProjector(
        directory, visits, contacts, exposures, settings.default_max_dwell_minutes, roster
    )
    runner = ProjectionRunner(store.recorder, mapper, [projector])
    committer = group_commit(settings, store, on_saved=runner.apply_own)
    sync.runner = runner
    if replay:
        runner.rebuild(progress=_quietly)
    return Services(
        settings=settings,
        app=app,
        store=store,
        casework=casework_of(app, audit, settings),
        runner=runner,
        keys=keys,
        directory=directory,
        visits=visits,
        audit=audit,
        admin=admin,
        answers=MemoryAnswerStore(),
        on_exposure=projector.on_exposure,
        new_admin_token=admin.first_start(),
        committer=committer,
        compaction=compaction,
        _closers=[committer.close],
    )


def _quietly(done: int, total: int) -> None:
    """No progress shown (the embedded server's start)."""


def _production(
    settings: Settings,
    env: dict[str, str],
    keys: KeyStore,
    mapper: ScopedCipherMapper,
    audit: AuditLog,
    admin: AdminTokens,
    sync: _Sync,
    common: dict[str, object],
    compaction: KeyCompaction,
) -> Services:
    client = redis.Redis.from_url(settings.redis_url)
    prefix = settings.redis_prefix
    # Keys Redis never holds: key names are pseudonyms under one, records sealed under another.
    records = RedisRecords(
        prefix,
        Pseudonyms(keys.service_key("redis-names")),
        Seals(keys.service_key("redis-records")),
    )
    projector = RedisProjector(client, records, settings.default_max_dwell_minutes)
    loop_clients = LoopClients(settings.redis_url)
    directory = RedisDirectory(
        client, records, cache_seconds=CACHE_SECONDS, loop_clients=loop_clients
    )
    visits = RedisVisitLog(client, records, projector, loop_clients)
    ports = Ports(
        directory=directory,
        visits=visits,
        contacts=RedisContactIndex(client, records, projector),
        exposures=RedisExposureLog(client, records),
        roster=RedisRoster(client, records),
        **common,  # type: ignore[arg-type]
    )
    store = LogStore(sync, mapper, env)
    app = Fangxin(ports, store)
    runner = RedisProjectionRunner(store.recorder, mapper, projector, client, also=[])
    committer = group_commit(settings, store, on_saved=runner.send_own, settle=runner.own_applied)
    sync.runner = runner
    feed = RedisFeed(client, records)
    # Erasure in one worker must reach every worker's key cache at once.
    keys.on_destroy.append(feed.publish_shredded)
    feed.on_shredded(keys.forget)
    feed.on_shredded(mapper.forget)
    feed.on_changed(directory.changed)
    feed.on_position(runner.announced)
    for forget_all in (directory.forget_all, keys.forget_all, mapper.forget_all):
        feed.on_subscribed(forget_all)
    runner.on_written.append(directory.written)
    feed.start()
    return Services(
        settings=settings,
        app=app,
        store=store,
        casework=casework_of(app, audit, settings),
        runner=runner,
        keys=keys,
        directory=directory,
        visits=visits,
        audit=audit,
        admin=admin,
        answers=RedisAnswerStore(client, prefix, keys.service_key("answer-cache")),
        on_exposure=feed.on_exposure,
        new_admin_token=None,
        redis=client,
        loop_clients=loop_clients,
        committer=committer,
        compaction=compaction,
        _closers=[feed.stop, committer.close],
    )
