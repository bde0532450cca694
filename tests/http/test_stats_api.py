"""Merchant statistics over HTTP: whole buckets, k-anonymous, and nothing finer to be learned."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from infrastructure.services import Services
from tests.conftest import MovableClock, World, bearer


def next_hour(clock: MovableClock) -> datetime:
    """Move the clock to one minute past the next whole hour, and answer that hour."""
    now = clock.now()
    hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    clock.advance(hour + timedelta(minutes=1) - now)
    return hour


def stats(world: World, merchant: dict[str, Any], venue: dict[str, Any], **params: str) -> Any:
    response = world.client.get(
        f"/v1/venues/{venue['venue_id']}/stats", params=params, headers=bearer(merchant["token"])
    )
    assert response.status_code == 200, response.text
    return response.json()


def check_out(world: World, visitor: dict[str, Any], venue: dict[str, Any]) -> None:
    response = world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 200, response.text


def test_stats_count_check_ins_unique_visitors_and_dwell_of_closed_visits(
    world: World, clock: MovableClock
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    hour = next_hour(clock)
    people = [world.visitor() for _ in range(5)]
    for person in people:  # in at :01, :02 … :05
        world.check_in(person, venue)
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(minutes=4))
    for person in reversed(people):  # out at :10, :11 … :14: stays of 5, 7, 9, 11, 13 minutes
        check_out(world, person, venue)
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(minutes=5))
    world.check_in(people[0], venue)  # a regular back at :20 for 30 minutes
    clock.advance(timedelta(minutes=30))
    check_out(world, people[0], venue)
    clock.advance(timedelta(hours=1))
    answer = stats(
        world,
        merchant,
        venue,
        **{"from": (hour - timedelta(hours=1)).isoformat(), "to": clock.now().isoformat()},
        bucket="day",
    )
    assert answer["totals"] == {
        "start": answer["from"],
        "suppressed": False,
        "check_ins": 6,
        "unique_visitors": 5,
        "median_dwell_seconds": 10 * 60,
        "p90_dwell_seconds": 30 * 60,
        "auto_closed": 0,
    }
    assert "visitor_id" not in str(answer)


def test_an_hour_of_fewer_than_five_visitors_shows_no_figures(
    world: World, clock: MovableClock
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    hour = next_hour(clock)
    for _ in range(4):
        world.check_in(world.visitor(), venue)
    clock.advance(timedelta(hours=1))
    answer = stats(
        world,
        merchant,
        venue,
        **{"from": hour.isoformat(), "to": (hour + timedelta(hours=1)).isoformat()},
    )
    assert answer["buckets"] == [
        {
            "start": hour.isoformat().replace("+00:00", "Z"),
            "suppressed": True,
            "check_ins": None,
            "unique_visitors": None,
            "median_dwell_seconds": None,
            "p90_dwell_seconds": None,
            "auto_closed": None,
        }
    ]
    assert answer["totals"]["suppressed"] is True


def test_bisecting_from_and_differencing_day_and_hour_buckets_learn_nothing_of_a_lone_visit(
    world: World, clock: MovableClock
) -> None:
    # Given an hour of five visitors, then one visitor alone at 25 past the next hour.
    merchant = world.merchant()
    venue = world.venue(merchant)
    busy = next_hour(clock)
    for _ in range(5):
        world.check_in(world.visitor(), venue)
    clock.advance(timedelta(hours=1, minutes=24))
    world.check_in(world.visitor(), venue)
    clock.advance(timedelta(hours=3))
    quiet = busy + timedelta(hours=1)
    end = (busy + timedelta(hours=3)).isoformat()
    # When the merchant bisects `from` across the quiet hour, in hour and in day buckets.
    answers = {
        bucket: [
            stats(
                world,
                merchant,
                venue,
                **{"from": (quiet + timedelta(minutes=m)).isoformat(), "to": end},
                bucket=bucket,
            )
            for m in (0, 10, 20, 24, 26, 30, 59)
        ]
        for bucket in ("hour", "day")
    }
    # Then every `from` inside the hour gives the same answer, and the lone visit is in none.
    for bucket in ("hour", "day"):
        assert all(a == answers[bucket][0] for a in answers[bucket])
    hours = answers["hour"][0]
    assert hours["buckets"][0]["suppressed"] is True
    assert hours["totals"]["suppressed"] is True
    days = stats(world, merchant, venue, **{"from": busy.isoformat(), "to": end}, bucket="day")
    assert days["totals"]["check_ins"] == 5
    assert days["totals"]["unique_visitors"] == 5


def test_the_window_is_rounded_outward_to_whole_buckets(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    answer = stats(
        world,
        merchant,
        venue,
        **{"from": "2026-03-01T10:37:12.5+08:00", "to": "2026-03-01T12:00:01+08:00"},
        tz="Asia/Shanghai",
    )
    assert (answer["from"], answer["to"]) == (
        "2026-03-01T10:00:00+08:00",
        "2026-03-01T13:00:00+08:00",
    )
    assert [b["start"] for b in answer["buckets"]] == [
        "2026-03-01T10:00:00+08:00",
        "2026-03-01T11:00:00+08:00",
        "2026-03-01T12:00:00+08:00",
    ]


def test_the_hour_still_running_is_suppressed_until_it_ends(
    world: World, clock: MovableClock
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    hour = next_hour(clock)
    for _ in range(5):
        world.check_in(world.visitor(), venue)
    window = {"from": hour.isoformat(), "to": (hour + timedelta(hours=1)).isoformat()}
    during = stats(world, merchant, venue, **window)
    clock.advance(timedelta(minutes=59))
    after = stats(world, merchant, venue, **window)
    assert during["buckets"][0]["suppressed"] is True
    assert after["buckets"][0]["unique_visitors"] == 5


def test_day_buckets_start_at_local_midnight_of_the_time_zone(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    answer = stats(
        world,
        merchant,
        venue,
        **{"from": "2026-03-01T00:00:00+08:00", "to": "2026-03-03T00:00:00+08:00"},
        bucket="day",
        tz="Asia/Shanghai",
    )
    starts = [b["start"] for b in answer["buckets"]]
    assert starts == ["2026-03-01T00:00:00+08:00", "2026-03-02T00:00:00+08:00"]


def test_visits_past_the_maximum_dwell_are_closed_automatically_and_counted_apart(
    world: World, clock: MovableClock, services: Services
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant, max_dwell_minutes=60)
    hour = next_hour(clock)
    people = [world.visitor() for _ in range(5)]
    for person in people:
        world.check_in(person, venue)
    clock.advance(timedelta(minutes=61))
    assert services.app.auto_check_out() == 5
    visit = world.visits(people[0])[0]
    assert visit["checkout_reason"] == "auto"
    closed_at = datetime.fromisoformat(visit["checked_out_at"])
    assert closed_at == datetime.fromisoformat(visit["checked_in_at"]) + timedelta(minutes=60)
    totals = stats(
        world, merchant, venue, **{"from": hour.isoformat(), "to": clock.now().isoformat()}
    )["totals"]
    assert totals["auto_closed"] == 5
    assert totals["median_dwell_seconds"] is None
