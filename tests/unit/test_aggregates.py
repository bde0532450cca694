"""The aggregates: what they record, what they refuse, how they replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.forgetting import Forgotten
from domain.people import Visitor, VisitorErasedError
from domain.venues import Venue
from domain.visits import CheckoutReason, Visit, VisitAlreadyClosedError

AT = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)


def new_visit(at: datetime = AT) -> Visit:
    visitor = uuid.uuid4()
    return Visit(
        id=uuid.uuid4(),
        visitor_id=visitor,
        guardian_id=visitor,
        venue_id=uuid.uuid4(),
        at=at,
        via="scan",
    )


def replay(aggregate: Visit | Visitor | Venue) -> object:
    events = aggregate.collect_events()
    state = None
    for event in events:
        state = event.mutate(state)
    return state


def test_a_new_visit_is_open_with_no_dwell() -> None:
    visit = new_visit()
    assert visit.is_open
    assert visit.dwell_seconds is None


def test_checking_out_records_the_reason_and_the_dwell() -> None:
    visit = new_visit()
    visit.check_out(AT + timedelta(minutes=42), CheckoutReason.PAYMENT)
    assert not visit.is_open
    assert visit.checkout_reason is CheckoutReason.PAYMENT
    assert visit.dwell_seconds == 42 * 60


def test_a_closed_visit_cannot_be_closed_again() -> None:
    visit = new_visit()
    visit.check_out(AT, CheckoutReason.MANUAL)
    with pytest.raises(VisitAlreadyClosedError):
        visit.check_out(AT, CheckoutReason.MANUAL)


def test_a_check_out_before_the_check_in_is_taken_at_the_check_in() -> None:
    visit = new_visit()
    visit.check_out(AT - timedelta(hours=1), CheckoutReason.SCAN)
    assert visit.dwell_seconds == 0


def test_a_visit_replays_to_the_same_state() -> None:
    visit = new_visit()
    visit.check_out(AT + timedelta(minutes=5), CheckoutReason.AUTO)
    copy = replay(visit)
    assert isinstance(copy, Visit)
    assert copy.checked_out_at == visit.checked_out_at
    assert copy.checkout_reason is CheckoutReason.AUTO


def test_visit_events_are_scoped_to_the_guardian_and_the_check_in_day() -> None:
    visit = new_visit(at=datetime(2026, 3, 4, 23, 50, tzinfo=UTC))
    visit.check_out(datetime(2026, 3, 5, 0, 20, tzinfo=UTC), CheckoutReason.SCAN)
    scopes = {e.privacy_scopes for e in visit.collect_events()}  # type: ignore[attr-defined]
    assert scopes == {("day:2026-03-04", f"visitor:{visit.guardian_id}")}


def make_visitor(dependents: list[str]) -> Visitor:
    return Visitor(
        id=uuid.uuid4(),
        name="王秀英",
        phone="+8613912345678",
        phone_index="idx",
        token_hash="hash",
        dependent_ids=[uuid.uuid4() for _ in dependents],
        dependent_names=dependents,
        assisted=False,
    )


def test_a_visitor_is_erased_once() -> None:
    visitor = make_visitor([])
    visitor.erase(AT)
    assert visitor.erased
    with pytest.raises(VisitorErasedError):
        visitor.erase(AT)


def test_a_visitors_erasure_event_carries_no_personal_data() -> None:
    visitor = make_visitor([])
    visitor.erase(AT)
    erased = visitor.collect_events()[-1]
    assert isinstance(erased, Visitor.Erased)
    assert not hasattr(erased, "privacy_scopes")  # stored under the system key, readable forever
    assert "王秀英" not in repr(vars(erased))


def test_rotating_codes_raises_the_key_version() -> None:
    venue = Venue(
        id=uuid.uuid4(),
        merchant_id=uuid.uuid4(),
        name="老王面馆",
        address="1 Road",
        region="110105",
        category="restaurant",
        capacity=None,
        max_dwell_minutes=180,
    )
    assert venue.code_version == 1
    assert venue.rotate_codes() == 2
    assert venue.max_dwell == timedelta(hours=3)
    copy = replay(venue)
    assert isinstance(copy, Venue)
    assert copy.code_version == 2


def test_a_forgotten_creation_replays_to_a_forgotten_shell() -> None:
    visitor_id = uuid.uuid4()
    forgotten = Forgotten(
        originator_id=visitor_id,
        originator_version=1,
        timestamp=AT,
        original_topic="domain.people:Visitor.Registered",
        aggregate_topic="domain.people:Visitor",
    )
    shell = forgotten.mutate(None)
    assert isinstance(shell, Visitor)
    assert shell.id == visitor_id
    assert shell.forgotten
    assert not shell.erased


def test_a_forgotten_visit_is_not_open() -> None:
    forgotten = Forgotten(
        originator_id=uuid.uuid4(),
        originator_version=1,
        timestamp=AT,
        original_topic="domain.visits:Visit.CheckedIn",
        aggregate_topic="domain.visits:Visit",
    )
    shell = forgotten.mutate(None)
    assert isinstance(shell, Visit)
    assert not shell.is_open


def test_a_resumed_open_visit_has_the_state_and_version_of_its_replay() -> None:
    visit = new_visit()
    replayed = replay(visit)
    assert isinstance(replayed, Visit)
    resumed = Visit.resume(
        id=visit.id,
        visitor_id=visit.visitor_id,
        guardian_id=visit.guardian_id,
        venue_id=visit.venue_id,
        at=visit.checked_in_at,
        via="scan",
    )
    assert resumed.version == replayed.version == 1
    assert resumed.is_open
    resumed.check_out(AT + timedelta(minutes=3), CheckoutReason.SUPERSEDED)
    [closed] = resumed.collect_events()
    assert closed.originator_version == 2
