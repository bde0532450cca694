"""A log the history tests write to directly: aggregates saved through the encrypting mapper
into an SQLite file or a PostgreSQL schema, with the key store that seals them."""

from __future__ import annotations

import random
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
from domain.notices import VenueNotice
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
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(str(path)))
    recorder.create_table()
    return recorder


def postgres_datastore(dsn_parts: dict[str, Any], schema: str) -> PostgresDatastore:
    """A pool over `schema` (two connections: a batch makes a day's partitions on a second)."""
    return PostgresDatastore(
        dsn_parts["dbname"],
        dsn_parts["host"],
        dsn_parts["port"],
        dsn_parts["user"],
        dsn_parts.get("password", ""),
        schema=schema,
        pool_size=2,
        max_overflow=2,
        lock_timeout=5,
    )


def postgres_recorder(dsn_parts: dict[str, Any], schema: str) -> GroupCommitRecorder:
    """Production's log: the group-commit recorder in `schema`."""
    recorder = GroupCommitRecorder(
        postgres_datastore(dsn_parts, schema), events_table_name=EVENTS_TABLE
    )
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

    def new_visit(
        self,
        person: UUID,
        venue: UUID,
        at: datetime,
        out: datetime | None = None,
        guardian: UUID | None = None,
    ) -> Visit:
        """A visit (checked out at `out`, if given), not saved yet."""
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
        return visit

    def visit(
        self,
        person: UUID,
        venue: UUID,
        at: datetime,
        out: datetime | None = None,
        guardian: UUID | None = None,
    ) -> Visit:
        visit = self.new_visit(person, venue, at, out, guardian)
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

    def notice(self, venue: Venue, sent_at: datetime) -> UUID:
        notice = VenueNotice(
            id=uuid.uuid4(),
            venue_id=venue.id,
            merchant_id=venue.merchant_id,
            message="20% off noodles tonight",
            start=sent_at - timedelta(hours=3),
            end=sent_at,
            sent_at=sent_at,
            reached=7,
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
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is not None:
            datastore.close()


class World:
    """What `populate` wrote: its people, venues and the days it wrote visits on."""

    def __init__(self) -> None:
        self.people: list[UUID] = []
        self.venues: list[UUID] = []
        self.erased: list[UUID] = []
        self.notices: list[UUID] = []


def populate(log: Log, days: list[datetime], people: int = 12, seed: int = 7) -> World:
    """A few days of a small town: venues (one changes its dwell), people with dependents,
    visits open and closed, an erasure, exposures and a merchant's notice per day."""
    rng = random.Random(seed)
    world = World()
    venues = [log.venue(max_dwell_minutes=rng.choice([30, 60, 180])) for _ in range(4)]
    world.venues = [v.id for v in venues]
    visitors = [log.visitor(dependents=i % 3 == 0) for i in range(people)]
    for visitor in visitors:
        world.people += [visitor.id, *visitor.dependent_ids]
    for n, day in enumerate(days):
        if n == 1:
            venues[0].edit(venues[0].name, venues[0].address, "bar", None, 45)
            log.save(venues[0])
        for visitor in visitors:
            for _ in range(2):
                at = day + timedelta(minutes=rng.randrange(0, 20 * 60))
                venue = rng.choice(venues).id
                out = at + timedelta(minutes=rng.randrange(5, 240)) if rng.random() < 0.7 else None
                log.visit(visitor.id, venue, at, out=out)
                for child in visitor.dependent_ids:
                    log.visit(child, venue, at, out=out, guardian=visitor.id)
        log.exposure(rng.choice(venues).id, day + timedelta(hours=10))
        world.notices.append(log.notice(venues[1], day + timedelta(hours=12)))
    gone = visitors[1]
    log.erase(gone, days[-1] + timedelta(hours=23))
    world.erased = [gone.id, *gone.dependent_ids]
    return world
