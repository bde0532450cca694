"""A log the history tests write to directly: aggregates saved through the encrypting mapper
into an SQLite file or a PostgreSQL schema, with the key store that seals them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from domain.cases import ExposureNotice
from domain.people import Visitor
from domain.venues import Venue
from domain.visits import CheckoutReason, Visit
from infrastructure.eventstore.mapper import ScopedCipherMapper
from infrastructure.eventstore.postgres import GroupCommitRecorder
from infrastructure.keys.keystore import KeyStore, SQLiteKeyBackend
from infrastructure.keys.masterkeys import MasterKeys

EVENTS_TABLE = "fangxin_events"


def sqlite_recorder(path: Path) -> SQLiteApplicationRecorder:
    """The embedded deployment's log: eventsourcing's SQLite recorder over `events.db`."""
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(str(path)), events_table_name=EVENTS_TABLE)
    recorder.create_table()
    return recorder


def postgres_recorder(dsn_parts: dict[str, Any], schema: str) -> GroupCommitRecorder:
    """Production's log: the group-commit recorder in `schema`."""
    datastore = PostgresDatastore(
        dsn_parts["dbname"],
        dsn_parts["host"],
        dsn_parts["port"],
        dsn_parts["user"],
        dsn_parts.get("password", ""),
        schema=schema,
        pool_size=2,
        lock_timeout=5,
    )
    recorder = GroupCommitRecorder(datastore, events_table_name=EVENTS_TABLE)
    recorder.create_table()
    return recorder


class Log:
    """Saves aggregates' new events to the log, encrypted as the service encrypts them."""

    def __init__(self, recorder: ApplicationRecorder, key_dir: Path) -> None:
        self.recorder = recorder
        self.keys = KeyStore(SQLiteKeyBackend(key_dir / "keys.db"), MasterKeys({1: b"m" * 32}, 1))
        self.mapper = ScopedCipherMapper(self.keys)

    def save(self, *aggregates: Aggregate) -> None:
        events = [e for a in aggregates for e in a.collect_events()]
        self.recorder.insert_events([self.mapper.to_stored_event(e) for e in events])

    def venue(self, max_dwell_minutes: int = 60) -> Venue:
        venue = Venue(
            id=uuid.uuid4(),
            merchant_id=uuid.uuid4(),
            name="Noodle House",
            address="1 Test Road",
            region="110105",
            category="restaurant",
            capacity=None,
            max_dwell_minutes=max_dwell_minutes,
        )
        self.save(venue)
        return venue

    def visitor(self, dependents: int = 0) -> Visitor:
        visitor = Visitor(
            id=uuid.uuid4(),
            name="王秀英",
            phone="+8613912345678",
            phone_index=uuid.uuid4().hex,
            token_hash=uuid.uuid4().hex,
            dependent_ids=[uuid.uuid4() for _ in range(dependents)],
            dependent_names=[f"child {i}" for i in range(dependents)],
            assisted=False,
        )
        self.save(visitor)
        return visitor

    def visit(
        self,
        person: UUID,
        venue: UUID,
        at: datetime,
        out: datetime | None = None,
        guardian: UUID | None = None,
    ) -> Visit:
        visit = Visit(
            id=uuid.uuid4(),
            visitor_id=person,
            guardian_id=guardian or person,
            venue_id=venue,
            at=at,
            via="scan",
        )
        if out is not None:
            visit.check_out(out, CheckoutReason.SCAN)
        self.save(visit)
        return visit

    def check_out(self, visit: Visit, at: datetime) -> None:
        visit.check_out(at, CheckoutReason.SCAN)
        self.save(visit)

    def exposure(self, venue: UUID, start: datetime, exempt: tuple[UUID, ...] = ()) -> UUID:
        notice = ExposureNotice(
            id=uuid.uuid4(),
            case_id=uuid.uuid4(),
            venue_id=venue,
            start=start,
            end=start + timedelta(hours=2),
            declared_by=uuid.uuid4(),
            declared_at=start + timedelta(days=1),
            notified=3,
            advice="get tested",
            exempt=exempt,
        )
        self.save(notice)
        return notice.id

    def erase(self, visitor: Visitor, at: datetime) -> None:
        visitor.erase(at)
        self.save(visitor)
        self.keys.destroy_visitor(visitor.id)
        self.mapper.forget_all()

    def close(self) -> None:
        self.keys.close()
