"""The history contract: one set of assertions on every store (memory, SQLite, PostgreSQL).

Each store follows a log written here through the encrypting mapper, and answers from what
it applied: visits by guardian and venue, stays (open ones resolved at `now`), exposures,
erasure, and a read after a write seeing it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.history_log import Log
from tests.history_stores import HistoryOpener, history_fixtures

stores, log, open_history = history_fixtures(["memory", "sqlite", "postgres"])

T = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def test_visits_by_guardian_and_venue_oldest_first(log: Log, open_history: HistoryOpener) -> None:
    venue, other = log.venue(), log.venue()
    parent = log.visitor(dependents=1)
    child = parent.dependent_ids[0]
    late = log.visit(parent.id, venue.id, T + H, out=T + 2 * H)
    early = log.visit(child, venue.id, T, guardian=parent.id)
    elsewhere = log.visit(parent.id, other.id, T + 3 * H)
    stranger = log.visit(log.visitor().id, venue.id, T + 30 * M)
    history = open_history()

    mine = history.of_guardian(parent.id, T - H, T + 4 * H)
    assert [v.visit_id for v in mine] == [early.id, late.id, elsewhere.id]
    assert mine[0].visitor_id == child
    assert mine[0].guardian_id == parent.id
    assert mine[1].checked_out_at == T + 2 * H
    assert mine[1].checkout_reason == "scan"
    assert [v.visit_id for v in history.of_guardian(parent.id, T, T + H)] == [early.id]
    at_venue = history.at_venue(venue.id, T - H, T + 4 * H)
    assert [v.visit_id for v in at_venue] == [early.id, stranger.id, late.id]
    assert history.visit(elsewhere.id) is not None
    assert history.visit(elsewhere.id).checked_out_at is None  # type: ignore[union-attr]


def test_stays_resolve_open_visits_at_max_dwell_or_now(
    log: Log, open_history: HistoryOpener
) -> None:
    venue = log.venue(max_dwell_minutes=60)
    a, b, c = log.visitor(), log.visitor(), log.visitor()
    closed = log.visit(a.id, venue.id, T, out=T + 20 * M)
    open_ = log.visit(b.id, venue.id, T + 10 * M)
    late = log.visit(c.id, venue.id, T + 5 * H)
    history = open_history()

    later = T + 10 * H
    stays = {s.visit_id: s for s in history.stays_at(venue.id, T - H, T + 2 * H, later)}
    assert set(stays) == {closed.id, open_.id}
    assert stays[closed.id].end == T + 20 * M
    assert stays[open_.id].end == T + 70 * M  # in + the venue's max dwell
    early_now = T + 30 * M
    (stay,) = history.stays_of(b.id, T, T + H, early_now)
    assert stay.end == early_now
    assert stay.venue_id == venue.id
    assert stay.visitor_id == b.id
    assert history.stays_at(venue.id, T + 21 * M, T + 22 * M, later)[0].visit_id == open_.id
    assert [s.visit_id for s in history.stays_of(c.id, T, T + 6 * H, later)] == [late.id]
    assert history.stays_of(c.id, T, T + 4 * H, later) == []


def test_a_changed_venue_dwell_applies_to_later_check_ins(
    log: Log, open_history: HistoryOpener
) -> None:
    venue = log.venue(max_dwell_minutes=60)
    before = log.visit(log.visitor().id, venue.id, T)
    venue.edit(venue.name, venue.address, venue.category, venue.capacity, 30)
    log.save(venue)
    after = log.visit(log.visitor().id, venue.id, T + 2 * H)
    unknown = log.visit(log.visitor().id, log.venue().id, T)
    history = open_history()

    ends = {s.visit_id: s.end for s in history.stays_at(venue.id, T, T + 4 * H, T + H * 9)}
    assert ends == {before.id: T + H, after.id: T + 2 * H + 30 * M}
    assert history.stays_of(unknown.visitor_id, T, T, T + 9 * H)[0].end == T + H


def test_stays_spanning_days_are_reported_once(log: Log, open_history: HistoryOpener) -> None:
    venue = log.venue(max_dwell_minutes=600)
    night = T.replace(hour=22)
    visit = log.visit(log.visitor().id, venue.id, night, out=night + 5 * H)
    history = open_history()

    found = history.stays_at(venue.id, night - H, night + 6 * H, night + 9 * H)
    assert [s.visit_id for s in found] == [visit.id]
    (next_morning,) = history.stays_at(venue.id, night + 3 * H, night + 4 * H, night + 9 * H)
    assert next_morning.end == night + 5 * H


def test_exposures_overlapping_a_window(log: Log, open_history: HistoryOpener) -> None:
    venue = log.venue()
    someone = log.visitor().id
    exposure = log.exposure(venue.id, T, exempt=(someone,))
    log.exposure(log.venue().id, T)
    history = open_history()

    (found,) = history.exposures_at(venue.id, T + H, T + 5 * H)
    assert found.exposure_id == exposure
    assert found.exempt == (someone,)
    assert found.end == T + 2 * H
    assert found.advice == "get tested"
    assert history.exposures_at(venue.id, T + 3 * H, T + 5 * H) == []


def test_erasure_removes_the_visitor_and_their_dependents(
    log: Log, open_history: HistoryOpener
) -> None:
    venue = log.venue()
    parent = log.visitor(dependents=1)
    child = parent.dependent_ids[0]
    log.visit(parent.id, venue.id, T, out=T + H)
    log.visit(child, venue.id, T, out=T + H, guardian=parent.id)
    kept = log.visit(log.visitor().id, venue.id, T, out=T + H)
    history = open_history()
    assert len(history.stays_at(venue.id, T, T + H, T + 5 * H)) == 3

    log.erase(parent, T + 5 * H)

    assert history.of_guardian(parent.id, T - H, T + 5 * H) == []
    assert history.stays_of(parent.id, T, T + H, T + 5 * H) == []
    assert history.stays_of(child, T, T + H, T + 5 * H) == []
    assert [s.visit_id for s in history.stays_at(venue.id, T, T + H, T + 5 * H)] == [kept.id]
    assert [v.visit_id for v in history.at_venue(venue.id, T - H, T + H)] == [kept.id]


def test_reads_see_the_writes_before_them_and_apply_each_event_once(
    log: Log, open_history: HistoryOpener
) -> None:
    venue = log.venue()
    person = log.visitor().id
    history = open_history()
    assert history.position() == log.recorder.max_notification_id()

    visit = log.visit(person, venue.id, T)
    assert [v.visit_id for v in history.of_guardian(person, T, T + H)] == [visit.id]
    log.check_out(visit, T + 20 * M)
    assert history.visit(visit.id).checked_out_at == T + 20 * M  # type: ignore[union-attr]
    assert history.catch_up() == 0
    assert history.position() == log.recorder.max_notification_id()

    reopened = open_history()
    assert reopened.stays_of(person, T, T + H, T + 5 * H) == history.stays_of(
        person, T, T + H, T + 5 * H
    )
    assert history.catch_up() == 0


def test_catch_up_counts_the_events_it_applied(log: Log, open_history: HistoryOpener) -> None:
    history = open_history()
    venue = log.venue()
    log.visit(log.visitor().id, venue.id, T, out=T + H)
    # venue, visitor, check-in, check-out
    assert history.catch_up() == 4
    assert history.catch_up() == 0


def test_batched_stays_answer_each_window_as_its_single_lookup(
    log: Log, open_history: HistoryOpener
) -> None:
    venue, other = log.venue(max_dwell_minutes=60), log.venue()
    a, b, c = log.visitor(), log.visitor(), log.visitor()
    night = T.replace(hour=23)
    log.visit(a.id, venue.id, T, out=T + 20 * M)
    log.visit(b.id, venue.id, T + 10 * M)  # open: ends at in + the venue's max dwell
    log.visit(a.id, other.id, night, out=night + 3 * H)  # across midnight
    log.visit(c.id, other.id, night + 2 * H, out=night + 4 * H)
    log.visit(b.id, other.id, T - 24 * H, out=T - 23 * H)  # the day before
    history = open_history()

    now = T + 30 * H
    at = [
        (venue.id, T - H, T + 2 * H),
        (other.id, night + 2 * H, night + 2 * H),
        (venue.id, T + 21 * M, T + 22 * M),
        (other.id, T - 25 * H, T - 24 * H),
        (venue.id, T - H, T + 2 * H),  # twice: answered twice
        (log.venue().id, T, T + H),  # nobody
        (other.id, T + 3 * H, T + 4 * H),  # nothing in the window
    ]
    assert history.stays_at_many(at, now) == [history.stays_at(*w, now) for w in at]
    assert [len(found) for found in history.stays_at_many(at, now)] == [2, 2, 1, 1, 2, 0, 0]
    of = [(a.id, T - H, night + H), (b.id, T - 30 * H, now), (c.id, T, T + H), (a.id, night, now)]
    assert history.stays_of_many(of, now) == [history.stays_of(*w, now) for w in of]
    assert [len(found) for found in history.stays_of_many(of, now)] == [2, 2, 0, 1]
    assert history.stays_at_many([], now) == []
    assert history.stays_of_many([], now) == []
