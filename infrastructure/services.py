"""What a process runs with: its services, and the clock and ids it takes from the system."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import redis

from domain.app import Fangxin
from domain.casework import Casework
from domain.ports import AnswerStore, Directory, ExposureView, VisitLog
from infrastructure.audit.chain import AuditLog
from infrastructure.eventstore.group_commit import GroupCommit
from infrastructure.eventstore.store import LogStore
from infrastructure.keys.keystore import KeyStore
from infrastructure.ops.admin import AdminTokens
from infrastructure.ops.duties import KeyCompaction
from infrastructure.outreach import Outreach
from infrastructure.projections.history_follower import HistoryFollower
from infrastructure.projections.runner import Runner
from infrastructure.readmodels.redis.loop import LoopClients
from infrastructure.settings import Settings


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """Now."""
        return datetime.now(UTC)


class RandomIds:
    """Random version-4 UUIDs, from the OS's randomness fetched in blocks (one syscall each 256)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""

    def new(self) -> UUID:
        """A fresh id."""
        with self._lock:
            if not self._pool:
                self._pool = os.urandom(16 * 256)
            raw, self._pool = self._pool[:16], self._pool[16:]
        return uuid.UUID(bytes=raw, version=4)


@dataclass
class Services:
    """Everything a process runs with; `close()` releases it."""

    settings: Settings
    app: Fangxin
    store: LogStore
    casework: Casework
    runner: Runner
    keys: KeyStore
    directory: Directory
    visits: VisitLog
    audit: AuditLog
    admin: AdminTokens
    answers: AnswerStore
    on_exposure: Callable[[Callable[[ExposureView], None]], None]
    new_admin_token: str | None
    # Merchants' notices, regions' risk levels, accesses to a visitor's data (issue 19).
    outreach: Outreach
    committer: GroupCommit | None = None
    compaction: KeyCompaction | None = None
    redis: redis.Redis | None = None
    # Redis clients of the event loops (the check-in's awaited reads).
    loop_clients: LoopClients | None = None
    # Keeps the on-disk history close behind the log (production, issue 21).
    history: HistoryFollower | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        """Start background work (projection, event feed, key compaction, history)."""
        self.runner.start()
        if self.compaction is not None:
            self.compaction.start()
        if self.history is not None:
            self.history.start()

    def lag(self) -> int:
        """How many events of the log the read models have not applied yet."""
        newest = self.store.recorder.max_notification_id() or 0
        return max(0, newest - self.runner.position)

    def close(self) -> None:
        """Stop background work and close the stores."""
        for closer in self._closers:
            closer()
        if self.compaction is not None:
            self.compaction.stop()
        if self.history is not None:
            self.history.stop()
        self.runner.stop()
        self.store.close()
        self.audit.close()
        self.keys.close()
        if self.redis is not None:
            self.redis.close()
