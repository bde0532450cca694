"""The embedded start (`infrastructure/projections/resume.py`): which events the memory read
models replay, and a runner that stands at a position having replayed only some of them."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.cases import Case, ExposureNotice
from domain.notices import VenueNotice
from domain.people import Account, Agency, Merchant, Officer, Visitor
from domain.risk import RegionRisk
from domain.venues import Venue
from domain.visits import Visit
from infrastructure.projections.resume import hot_topics
from infrastructure.projections.runner import ProjectionRunner

# Every event a memory read model applies (ReadModelProjector, NoticeProjector, rosters).
HOT = (
    Agency.Registered,
    Officer.Registered,
    Officer.TokenRotated,
    Officer.Deactivated,
    ExposureNotice.Declared,
    Visitor.Registered,
    Visitor.Erased,
    Merchant.Registered,
    Merchant.TokenRotated,
    Venue.Registered,
    Venue.CodeRotated,
    Venue.Changed,
    Account.TokenRotated,
    Case.Opened,
    Case.Accessed,
    VenueNotice.Sent,
    RegionRisk.LevelSet,
)


def test_the_memory_read_models_replay_every_event_but_the_visits() -> None:
    topics = set(hot_topics())

    assert {get_topic(event) for event in HOT} <= topics
    assert get_topic(Visit.CheckedIn) not in topics
    assert get_topic(Visit.CheckedOut) not in topics


class Kept:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def apply(self, event: Any) -> None:
        self.events.append(event)


class Other(Aggregate):
    pass


def test_a_resumed_runner_applies_only_the_topics_up_to_the_position_then_follows_all() -> None:
    app: Application[Any] = Application()
    app.save(*[Aggregate() if i % 2 else Other() for i in range(2500)])
    kept = Kept()
    runner = ProjectionRunner(app.recorder, app.mapper, [kept])

    applied = runner.resume(2000, [get_topic(Other.Created)])

    assert applied == 1000 == len(kept.events)
    assert all(isinstance(e, Other.Created) for e in kept.events)
    assert runner.position == 2000
    assert runner.catch_up() == 500  # after the position: every topic
    assert len(kept.events) == 1500
