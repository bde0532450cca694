"""A copy of the event store does not link a person's rows: no key id is shared by their
registration and their visits, or by their visits of different days; erasure still makes every
one of them unreadable."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any
from uuid import UUID

from domain.forgetting import Forgotten
from infrastructure.services import Services
from tests.conftest import MovableClock, World, bearer
from tests.unit.test_mapper import key_id_links


def stored_rows(services: Services) -> dict[UUID, list[bytes]]:
    """Each aggregate's stored states, as a copy of the event store shows them."""
    rows: dict[UUID, list[bytes]] = {}
    for notification in services.store.recorder.select_notifications(start=None, limit=100_000):
        rows.setdefault(UUID(str(notification.originator_id)), []).append(notification.state)
    return rows


def test_a_visitors_rows_share_no_key_id_across_days_and_all_are_forgotten_after_erasure(
    world: World, services: Services, clock: MovableClock
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    shopper = world.visitor(dependents=["Little Li"])
    someone = world.visitor()
    days: list[list[Any]] = []
    for _ in range(3):
        visits = [
            world.check_in(shopper, venue, party=["Little Li"]),
            world.check_in(shopper, venue),  # supersedes the first
            world.check_in(someone, venue),
        ]
        days.append(visits)
        clock.advance(timedelta(days=1))

    rows = stored_rows(services)
    groups = [rows[UUID(shopper["visitor_id"])]] + [
        [
            state
            for visit in visits[:2]
            for visit_id in [visit["visit_id"], *visit["party_visit_ids"]]
            for state in rows[UUID(visit_id)]
        ]
        for visits in days
    ]
    for earlier, later in itertools.combinations(groups, 2):
        for first, second in itertools.product(earlier, later):
            assert key_id_links(first, second) == set()
    for visits, group in zip(days, groups[1:], strict=True):
        # What the shopper's rows of a day share, everyone's rows of that day share.
        [others] = [rows[UUID(visits[2]["visit_id"])][0][2:18]]
        for first, second in itertools.combinations(group, 2):
            assert key_id_links(first, second) == {others}

    erased = world.client.delete("/v1/me", headers=bearer(shopper["token"]))
    assert erased.status_code == 204
    shoppers = {state for group in groups for state in group}
    read_back = [
        services.store.mapper.to_domain_event(notification)
        for notification in services.store.recorder.select_notifications(start=None, limit=100_000)
        if notification.state in shoppers
    ]
    assert len(read_back) == len(shoppers)
    assert all(isinstance(event, Forgotten) for event in read_back)
