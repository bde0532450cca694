"""The composition root: build the application, its stores, keys and read models from settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder

from domain.app import Fangxin, Ports, transcodings
from domain.casework import Casework
from domain.ports import Clock
from infrastructure.admin import AdminTokens
from infrastructure.audit import AuditLog, SQLiteAuditLog
from infrastructure.crypto import TokenCredentials, VenueCodeSigner
from infrastructure.eventstore import event_store_env
from infrastructure.keystore import KeyBackend, KeyStore, MasterKeys, SQLiteKeyBackend
from infrastructure.mapper import ScopedCipherMapper
from infrastructure.projections import AuditProjector, ProjectionRunner, ReadModelProjector
from infrastructure.readmodels.contact_index import MemoryContactIndex
from infrastructure.readmodels.memory import MemoryDirectory, MemoryExposureLog, MemoryVisitLog
from infrastructure.settings import Settings


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """Now."""
        return datetime.now(UTC)


class RandomIds:
    """Random version-4 UUIDs."""

    def new(self) -> UUID:
        """A fresh id."""
        return uuid.uuid4()


@dataclass
class Services:
    """Everything a process runs with; `close()` releases it."""

    settings: Settings
    app: Fangxin
    casework: Casework
    runner: ProjectionRunner
    projector: ReadModelProjector
    keys: KeyStore
    directory: MemoryDirectory
    visits: MemoryVisitLog
    audit: AuditLog
    admin: AdminTokens
    new_admin_token: str | None

    def close(self) -> None:
        """Stop background work and close the stores."""
        self.runner.stop()
        self.app.close()
        self.audit.close()
        self.keys.close()


def open_key_backend(settings: Settings) -> KeyBackend:
    """The key store's backend for the configured deployment."""
    return SQLiteKeyBackend(Path(settings.data_dir) / "keys.db")


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Wire the embedded deployment: SQLite log and keys, memory read models rebuilt from log."""
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    master = MasterKeys.load_or_create(settings.master_key, data)
    keys = KeyStore(open_key_backend(settings), master)
    directory = MemoryDirectory()
    visits = MemoryVisitLog()
    contacts = MemoryContactIndex()
    exposures = MemoryExposureLog()
    transcoder = JSONTranscoder()
    for transcoding in transcodings():
        transcoder.register(transcoding)
    mapper = ScopedCipherMapper(transcoder, keys)
    runner_ref: list[ProjectionRunner] = []

    class _Sync:
        def wait_for(self, position: int) -> None:
            runner_ref[0].wait_for(position)

    ports = Ports(
        clock=clock or SystemClock(),
        ids=RandomIds(),
        credentials=TokenCredentials(keys.service_key("phone-index")),
        codes=VenueCodeSigner(keys.service_key("venue-codes")),
        keys=keys,
        directory=directory,
        visits=visits,
        contacts=contacts,
        exposures=exposures,
        sync=_Sync(),
    )
    app = Fangxin(ports, env=event_store_env(settings), mapper=mapper)
    projector = ReadModelProjector(
        directory, visits, contacts, exposures, settings.default_max_dwell_minutes
    )
    audit = SQLiteAuditLog(data / "audit.db", keys.service_key("audit-chain"))
    runner = ProjectionRunner(app.recorder, mapper, [projector, AuditProjector(audit)])
    runner_ref.append(runner)
    runner.catch_up()
    admin = AdminTokens(keys.backend, settings.admin_token)
    return Services(
        settings=settings,
        app=app,
        casework=Casework(app),
        runner=runner,
        projector=projector,
        keys=keys,
        directory=directory,
        visits=visits,
        audit=audit,
        admin=admin,
        new_admin_token=admin.first_start(),
    )
