"""Data written, service stopped, started again: visits, statistics and tokens intact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.testing import TestClient

from infrastructure.bootstrap import build_services
from infrastructure.settings import Settings
from interface.http.app import create_app
from tests.conftest import MovableClock, World, bearer


def test_a_restart_finds_visits_stats_and_tokens_again(settings: Settings) -> None:
    clock = MovableClock()
    first = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=first)) as client:
        world = World(client)
        merchant = world.merchant()
        venue = world.venue(merchant, capacity=10)
        visitor = world.visitor(dependents=["小红"])
        gone = world.visitor()
        start = clock.now()
        world.check_in(visitor, venue, party=["小红"])
        for _ in range(4):  # statistics show an hour of at least five visitors
            world.check_in(world.visitor(), venue)
        world.check_in(gone, venue)
        client.delete("/v1/me", headers=bearer(gone["token"]))
        clock.advance(timedelta(hours=1))
        stats_path = f"/v1/venues/{venue['venue_id']}/stats"
        window: dict[str, Any] = {
            "bucket": "day",
            "from": (start - timedelta(hours=1)).isoformat(),
            "to": (start + timedelta(hours=2)).isoformat(),
        }
        before_stats = client.get(stats_path, params=window, headers=bearer(merchant["token"]))
        before_visits = world.visits(visitor)
    first.close()

    second = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=second)) as client:
        world = World(client)
        assert world.visits(visitor) == before_visits
        after_stats = client.get(stats_path, params=window, headers=bearer(merchant["token"]))
        assert after_stats.json() == before_stats.json()
        assert after_stats.json()["totals"]["check_ins"] == 6
        occupancy = client.get(
            f"/v1/venues/{venue['venue_id']}/occupancy", headers=bearer(merchant["token"])
        )
        assert occupancy.json() == {"current": 6, "capacity": 10}
        assert client.get("/v1/me/visits", headers=bearer(gone["token"])).status_code == 401
        listed = client.get("/v1/venues", headers=bearer(merchant["token"])).json()["venues"]
        assert listed[0]["code"] == venue["code"]
        world.check_in(visitor, venue)  # the old token and code still work
    second.close()


def test_open_visits_are_closed_automatically_after_a_restart(settings: Settings) -> None:
    clock = MovableClock()
    first = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=first)) as client:
        world = World(client)
        venue = world.venue(world.merchant(), max_dwell_minutes=30)
        visitor = world.visitor()
        world.check_in(visitor, venue)
    first.close()

    clock.advance(timedelta(minutes=31))
    second = build_services(settings, clock=clock)
    assert second.app.auto_check_out() == 1
    with TestClient(create_app(settings, services=second)) as client:
        assert World(client).visits(visitor)[0]["checkout_reason"] == "auto"
    second.close()
