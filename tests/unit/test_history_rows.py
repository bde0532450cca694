"""What each event means for the history (`Rows`), and how a batch is grouped (`grouped`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.domain import DomainEventProtocol

from domain.forgetting import Forgotten
from domain.ports import VisitView
from infrastructure.history.changes import grouped
from infrastructure.history.rows import (
    AddVisit,
    CloseVisit,
    DayKeys,
    EraseVisitor,
    LogRow,
    Rows,
    VenueDwell,
)
from tests.history_log import Log, sqlite_recorder

AT = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    opened = Log(sqlite_recorder(tmp_path / "events.db"), tmp_path)
    yield opened
    opened.close()


def events_of(log: Log) -> list[tuple[DomainEventProtocol[UUID], bytes]]:
    found = log.recorder.select_notifications(start=1, limit=1000)
    return [(log.mapper.to_domain_event(n), n.state) for n in found]


def test_a_visit_is_a_row_with_its_venues_dwell_and_a_log_row_of_its_day(log: Log) -> None:
    venue = log.venue(max_dwell_minutes=45)
    person = uuid.uuid4()
    visit = log.visit(person, venue.id, AT, out=AT + timedelta(hours=2))
    rows = Rows(default_max_dwell_minutes=180)

    operations = [op for event, state in events_of(log) for op in rows.of(event, state)]

    assert operations[0] == VenueDwell(venue.id, 45)
    added = next(op for op in operations if isinstance(op, AddVisit))
    assert added.max_dwell_minutes == 45
    assert added.day == date(2026, 3, 4)
    assert added.visit.visitor_id == person
    closed = next(op for op in operations if isinstance(op, CloseVisit))
    assert closed == CloseVisit(visit.id, date(2026, 3, 4), AT + timedelta(hours=2), "scan")
    # One log row per stream, from its first event.
    assert [op for op in operations if isinstance(op, LogRow)] == [
        LogRow(date(2026, 3, 4), visit.id)
    ]


def test_an_unknown_venue_gets_the_default_dwell(log: Log) -> None:
    log.visit(uuid.uuid4(), uuid.uuid4(), AT)
    rows = Rows(default_max_dwell_minutes=90)

    (added, _) = [op for event, state in events_of(log) for op in rows.of(event, state)]

    assert isinstance(added, AddVisit)
    assert added.max_dwell_minutes == 90


def test_a_merchants_notice_is_a_log_row_of_its_sending_day(log: Log) -> None:
    venue = log.venue()
    notice = log.notice(venue, AT)
    rows = Rows()

    operations = [op for event, state in events_of(log) for op in rows.of(event, state)]

    assert LogRow(date(2026, 3, 4), notice) in operations


def test_a_visit_forgotten_by_erasure_still_names_its_day(log: Log) -> None:
    visitor = log.visitor()
    visit = log.visit(visitor.id, uuid.uuid4(), AT)
    log.erase(visitor, AT + timedelta(days=1))
    found = events_of(log)
    forgotten = [(e, s) for e, s in found if isinstance(e, Forgotten)]
    assert len(forgotten) == 2  # registration, check-in (the erasure itself is readable)

    with_keys = Rows(day_keys=DayKeys(log.keys.key_id, today=AT.date()))
    without = Rows()

    assert [op for e, s in forgotten for op in with_keys.of(e, s)] == [
        LogRow(date(2026, 3, 4), visit.id)
    ]
    assert [op for e, s in forgotten for op in without.of(e, s)] == []


def test_day_keys_know_no_key_of_another_scope(log: Log) -> None:
    day_keys = DayKeys(log.keys.key_id, today=AT.date())
    key_id = log.keys.key_id(f"visitor:{uuid.uuid4()}")
    state = bytes([3, 1]) + key_id + b"payload"

    assert day_keys.day_of(state) is None
    assert day_keys.day_of(bytes([3, 1]) + log.keys.key_id("day:2026-03-01")) == date(2026, 3, 1)


def test_a_check_in_after_an_erasure_starts_a_new_group() -> None:
    venue = uuid.uuid4()
    first = AddVisit(_view(venue), 60)
    later = AddVisit(_view(venue), 60)
    erased = EraseVisitor(uuid.uuid4())

    groups = grouped([first, erased, later], dropped_before=None)

    assert [g.visits for g in groups] == [[first], [later]]
    assert [g.erased for g in groups] == [[erased.visitor_id], []]


def test_rows_of_days_already_dropped_are_left_out() -> None:
    old = AddVisit(_view(uuid.uuid4(), AT - timedelta(days=40)), 60)
    kept = AddVisit(_view(uuid.uuid4()), 60)
    gone_log_row = LogRow(old.day, uuid.uuid4())

    (group,) = grouped([old, kept, gone_log_row], dropped_before=AT.date() - timedelta(days=10))

    assert group.visits == [kept]
    assert group.log_rows == {}


def _view(venue: uuid.UUID, at: datetime = AT) -> VisitView:
    person = uuid.uuid4()
    return VisitView(uuid.uuid4(), person, person, venue, at, "scan")
