"""The composition root: build the application, its stores, keys and read models from settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder

from domain.app import Fangxin, Ports, transcodings
from domain.ports import Clock
from infrastructure.crypto import TokenCredentials, VenueCodeSigner
from infrastructure.eventstore import event_store_env
from infrastructure.keystore import KeyStore, MasterKeys, SQLiteKeyBackend
from infrastructure.mapper import ScopedCipherMapper
from infrastructure.projections import ProjectionRunner, ReadModelProjector
from infrastructure.readmodels.memory import MemoryDirectory, MemoryVisitLog
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
    runner: ProjectionRunner
    keys: KeyStore
    directory: MemoryDirectory
    visits: MemoryVisitLog

    def close(self) -> None:
        """Stop background work and close the stores."""
        self.runner.stop()
        self.app.close()
        self.keys.close()


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Wire the embedded deployment: SQLite log and keys, memory read models rebuilt from log."""
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    master = MasterKeys.load_or_create(settings.master_key, data)
    keys = KeyStore(SQLiteKeyBackend(data / "keys.db"), master)
    directory = MemoryDirectory()
    visits = MemoryVisitLog()
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
        sync=_Sync(),
    )
    app = Fangxin(ports, env=event_store_env(settings), mapper=mapper)
    projector = ReadModelProjector(directory, visits, settings.default_max_dwell_minutes)
    runner = ProjectionRunner(app.recorder, mapper, projector)
    runner_ref.append(runner)
    runner.catch_up()
    return Services(
        settings=settings, app=app, runner=runner, keys=keys, directory=directory, visits=visits
    )
