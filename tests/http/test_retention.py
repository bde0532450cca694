"""Retention: old visits leave the read models and their day keys are shredded."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from litestar.testing import TestClient

from domain.forgetting import Forgotten
from infrastructure.bootstrap import build_services
from infrastructure.services import Services
from infrastructure.settings import Settings
from interface.http.app import create_app
from tests.conftest import MovableClock, World, bearer


def test_visits_past_retention_are_dropped_and_shredded(
    settings: Settings, services: Services, clock: MovableClock, world: World
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    visitor = world.visitor()
    old = world.check_in(visitor, venue)
    world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    clock.advance(timedelta(days=27))
    recent = world.check_in(visitor, venue)
    clock.advance(timedelta(days=2))  # the first visit is now 29 days old

    dropped = services.app.apply_retention(settings.retention_days)

    assert dropped == 1
    window = {
        "from": (clock.now() - timedelta(days=40)).isoformat(),
        "to": clock.now().isoformat(),
    }
    listed = world.client.get("/v1/me/visits", params=window, headers=bearer(visitor["token"]))
    assert [v["visit_id"] for v in listed.json()["visits"]] == [recent["visit_id"]]
    # The stored events of the old visit can no longer be read by anyone: a history drops them
    # from the log with their day (issue 21); without one they stay, unreadable.
    stored = services.store.recorder.select_events(originator_id=UUID(old["visit_id"]))
    assert len(stored) == (0 if services.history is not None else 2)
    assert all(isinstance(services.store.mapper.to_domain_event(e), Forgotten) for e in stored)


def test_a_restart_after_retention_does_not_bring_old_visits_back(settings: Settings) -> None:
    clock = MovableClock()
    first = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=first)) as client:
        world = World(client)
        venue = world.venue(world.merchant())
        visitor = world.visitor()
        world.check_in(visitor, venue)
        clock.advance(timedelta(days=30))
        first.app.apply_retention(settings.retention_days)
    first.close()
    second = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=second)) as client:
        window = {
            "from": (clock.now() - timedelta(days=60)).isoformat(),
            "to": clock.now().isoformat(),
        }
        listed = client.get("/v1/me/visits", params=window, headers=bearer(visitor["token"]))
        assert listed.json()["visits"] == []
    second.close()
