"""The check-in and check-out rules, against the embedded services and a clock the test moves."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

import pytest

from domain.answers import Registration
from domain.errors import ConcurrentChangeError, InvalidInputError
from domain.ports import VisitView
from domain.venues import VenueCodeRotatedError
from domain.visit_service import NothingOpenError, WrongCodeKindError
from domain.visits import CheckoutReason, Visit
from infrastructure.services import Services
from tests.checkins import check_in
from tests.conftest import MovableClock


def merchant_venue(services: Services, max_dwell_minutes: int = 180) -> tuple[UUID, UUID]:
    app = services.app
    merchant = app.register_merchant("老王", "+8613900000000", None)
    venue_id = app.register_venue(
        merchant.id, "老王面馆", "1 Road", "110105", "restaurant", None, max_dwell_minutes, None
    )
    return merchant.id, venue_id


def codes(services: Services, merchant_id: UUID, venue_id: UUID) -> tuple[str, str]:
    found = services.app.codes_of(services.app.owned_venue(merchant_id, venue_id))
    return found.code, found.checkout_code


def shopper(services: Services, dependents: tuple[str, ...] = ()) -> Registration:
    return services.app.register_visitor("王秀英", "+8613912345678", list(dependents), None)


def visit(services: Services, visit_id: UUID) -> VisitView:
    found = services.visits.get(visit_id)
    assert found is not None
    return found


def test_a_check_in_closes_the_open_visit_elsewhere_as_superseded(
    services: Services, clock: MovableClock
) -> None:
    here, there = merchant_venue(services), merchant_venue(services)
    person = shopper(services)
    first = check_in(services, person.id, codes(services, *here)[0])
    clock.advance(timedelta(minutes=40))
    second = check_in(services, person.id, codes(services, *there)[0])
    closed = visit(services, first.visit_id)
    assert closed.checkout_reason == "superseded"
    assert closed.checked_out_at == second.checked_in_at == clock.now()
    assert visit(services, second.visit_id).checked_out_at is None
    assert [v.visit_id for v in services.visits.open_of(person.id)] == [second.visit_id]


def test_a_party_checks_in_each_dependent_once_under_the_visitor(services: Services) -> None:
    venue = merchant_venue(services)
    person = shopper(services, ("小红", "小明"))
    answer = check_in(services, person.id, codes(services, *venue)[0], ["小红", "小明", "小红"])
    assert len(answer.party_visit_ids) == 2
    for party_visit in answer.party_visit_ids:
        seen = visit(services, party_visit)
        assert seen.guardian_id == person.id
        assert seen.visitor_id != person.id
        assert seen.via == "party"
    with pytest.raises(InvalidInputError):
        check_in(services, person.id, codes(services, *venue)[0], ["陌生人"])


def test_an_idempotency_key_answers_the_first_check_in_again(
    services: Services, clock: MovableClock
) -> None:
    venue = merchant_venue(services)
    person = shopper(services)
    first = check_in(services, person.id, codes(services, *venue)[0], idempotency_key="k1")
    clock.advance(timedelta(minutes=5))
    again = check_in(services, person.id, codes(services, *venue)[0], idempotency_key="k1")
    assert again == first
    assert len(services.visits.open_of(person.id)) == 1


def test_only_the_current_entry_code_checks_in(services: Services) -> None:
    merchant_id, venue_id = merchant_venue(services)
    person = shopper(services)
    entry, checkout = codes(services, merchant_id, venue_id)
    with pytest.raises(WrongCodeKindError):
        check_in(services, person.id, checkout)
    services.app.rotate_codes(merchant_id, venue_id)
    with pytest.raises(VenueCodeRotatedError):
        check_in(services, person.id, entry)


def test_check_out_by_code_closes_the_partys_visits_and_says_how_long(
    services: Services, clock: MovableClock
) -> None:
    venue = merchant_venue(services)
    person = shopper(services, ("小红",))
    entry, checkout = codes(services, *venue)
    answer = check_in(services, person.id, entry, ["小红"])
    clock.advance(timedelta(minutes=25))
    closed = services.app.check_out_by_code(person.id, checkout)
    assert closed.dwell_seconds == 25 * 60
    for visit_id in (answer.visit_id, *answer.party_visit_ids):
        assert visit(services, visit_id).checkout_reason == "payment"
    with pytest.raises(NothingOpenError):
        services.app.check_out_by_code(person.id, entry)


def test_a_visit_past_the_venues_longest_stay_is_closed_at_that_time(
    services: Services, clock: MovableClock
) -> None:
    venue = merchant_venue(services, max_dwell_minutes=60)
    person = shopper(services)
    answer = check_in(services, person.id, codes(services, *venue)[0])
    clock.advance(timedelta(minutes=59))
    assert services.app.auto_check_out() == 0
    clock.advance(timedelta(minutes=2))
    assert services.app.auto_check_out() == 1
    closed = visit(services, answer.visit_id)
    assert closed.checkout_reason == "auto"
    assert closed.checked_out_at == answer.checked_in_at + timedelta(minutes=60)


def test_concurrent_check_ins_of_one_person_leave_one_visit_open(services: Services) -> None:
    venues = [merchant_venue(services) for _ in range(4)]
    person = shopper(services)
    entries = [codes(services, *venue)[0] for venue in venues]

    async def all_at_once() -> list[UUID]:
        try:
            answers = await asyncio.gather(
                *(services.app.check_in(person.id, code, [], None) for code in entries)
            )
        finally:
            if services.loop_clients is not None:
                await services.loop_clients.close()
        return [answer.visit_id for answer in answers]

    made = asyncio.run(all_at_once())
    assert len(set(made)) == 4
    assert len(services.visits.open_of(person.id)) == 1
    assert sorted(visit(services, v).checkout_reason or "open" for v in made) == [
        "open",
        "superseded",
        "superseded",
        "superseded",
    ]


def test_a_commit_over_a_change_made_meanwhile_is_a_domain_conflict(services: Services) -> None:
    venue = merchant_venue(services)
    person = shopper(services)
    answer = check_in(services, person.id, codes(services, *venue)[0])
    stale: Visit = services.store.get(answer.visit_id)
    services.app.check_out_visit(person.id, answer.visit_id)
    stale.check_out(stale.checked_in_at, CheckoutReason.MANUAL)
    with pytest.raises(ConcurrentChangeError):
        services.store.commit(stale)
