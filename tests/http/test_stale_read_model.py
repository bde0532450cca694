"""A stale read of an open visit can never overwrite what happened to it meanwhile."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.errors import ConcurrentChangeError
from domain.visits import CheckoutReason, Visit
from infrastructure.services import Services
from tests.conftest import MovableClock, World, bearer


def test_superseding_a_visit_that_was_closed_meanwhile_conflicts(
    world: World, services: Services, clock: MovableClock
) -> None:
    venue = world.venue(world.merchant())
    visitor = world.visitor()
    visit = world.check_in(visitor, venue)
    stale = services.visits.get(UUID(visit["visit_id"]))
    assert stale is not None
    world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    resumed = Visit.resume(
        id=stale.visit_id,
        visitor_id=stale.visitor_id,
        guardian_id=stale.guardian_id,
        venue_id=stale.venue_id,
        at=stale.checked_in_at,
        via=stale.via,
    )
    resumed.check_out(clock.now(), CheckoutReason.SUPERSEDED)
    with pytest.raises(ConcurrentChangeError):
        services.store.commit(resumed)
    assert world.visits(visitor)[0]["checkout_reason"] == "payment"
