"""Merchants' notices over HTTP: who they reach, what the merchant learns, their limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from infrastructure.services import Services
from tests.conftest import MovableClock, World, bearer


def send(world: World, merchant: dict[str, Any], venue: dict[str, Any], **body: Any) -> Any:
    return world.client.post(
        f"/v1/venues/{venue['venue_id']}/notices", json=body, headers=bearer(merchant["token"])
    )


def notices_of(world: World, visitor: dict[str, Any]) -> list[dict[str, Any]]:
    response = world.client.get("/v1/me/notices", headers=bearer(visitor["token"]))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["notices"]
    return found


def window(clock: MovableClock, back: timedelta) -> dict[str, str]:
    now = clock.now()
    return {"from": (now - back).isoformat(), "to": now.isoformat()}


def test_a_notice_reaches_those_who_were_there_and_only_them(
    world: World, clock: MovableClock
) -> None:
    merchant = world.merchant()
    venue, elsewhere = world.venue(merchant, name="老王面馆"), world.venue(merchant)
    there = [world.visitor() for _ in range(6)]
    for visitor in there:
        world.check_in(visitor, venue)
    away = world.visitor()
    world.check_in(away, elsewhere)
    clock.advance(timedelta(minutes=30))
    later = world.visitor()

    sent = send(
        world, merchant, venue, message="  请留意健康状况  ", **window(clock, timedelta(hours=1))
    )
    clock.advance(timedelta(seconds=1))
    world.check_in(later, venue)

    assert sent.status_code == 201, sent.text
    assert sent.json()["reached"] == 6
    got = notices_of(world, there[0])
    assert [n["message"] for n in got] == ["请留意健康状况"]
    assert got[0]["venue"] == {"venue_id": venue["venue_id"], "name": "老王面馆"}
    assert set(got[0]) == {"venue", "message", "from", "to", "sent_at"}
    assert notices_of(world, away) == []
    assert notices_of(world, later) == []


def test_the_merchant_learns_only_fewer_than_5_for_a_window_that_isolates_few(
    world: World, clock: MovableClock
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    crowd = [world.visitor() for _ in range(5)]
    for visitor in crowd:
        world.check_in(visitor, venue)
    clock.advance(timedelta(hours=4))  # the crowd is gone (maximum dwell)
    lone = world.visitor()
    world.check_in(lone, venue)
    clock.advance(timedelta(minutes=5))

    narrow = send(world, merchant, venue, message="hi", **window(clock, timedelta(minutes=10)))
    empty_window = {
        "from": (clock.now() - timedelta(days=2)).isoformat(),
        "to": (clock.now() - timedelta(days=1)).isoformat(),
    }
    nobody = send(world, merchant, venue, message="hi", **empty_window)

    assert narrow.json()["reached"] == "fewer than 5"
    assert nobody.json()["reached"] == "fewer than 5"
    assert lone["visitor_id"] not in narrow.text
    assert len(notices_of(world, lone)) == 1


def test_another_merchants_venue_is_not_found(world: World, clock: MovableClock) -> None:
    owner, other = world.merchant(), world.merchant()
    venue = world.venue(owner)
    refused = send(world, other, venue, message="hi", **window(clock, timedelta(hours=1)))
    assert refused.status_code == 404, refused.text


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (timedelta(hours=-1), timedelta(hours=1), "hi"),  # to in the future
        (timedelta(hours=2), timedelta(hours=3), "hi"),  # reversed
        (timedelta(days=8), timedelta(0), "hi"),  # longer than 7 days
        (timedelta(days=40), timedelta(days=35), "hi"),  # before retention
        (timedelta(hours=1), timedelta(0), ""),  # empty
        (timedelta(hours=1), timedelta(0), "   "),  # blank
        (timedelta(hours=1), timedelta(0), "x" * 501),  # too long
    ],
)
def test_bad_notices_are_refused(
    world: World, clock: MovableClock, start: timedelta, end: timedelta, message: str
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    now = clock.now()
    refused = send(
        world,
        merchant,
        venue,
        message=message,
        **{"from": (now - start).isoformat(), "to": (now - end).isoformat()},
    )
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_a_venue_sends_at_most_5_notices_a_day(world: World, clock: MovableClock) -> None:
    merchant = world.merchant()
    venue, other = world.venue(merchant), world.venue(merchant)
    answers = [
        send(world, merchant, venue, message=f"n{i}", **window(clock, timedelta(hours=1)))
        for i in range(6)
    ]
    assert [a.status_code for a in answers] == [201] * 5 + [409]
    assert answers[-1].json()["type"] == "/problems/notice-limit-reached"
    assert (
        send(world, merchant, other, message="x", **window(clock, timedelta(hours=1))).status_code
        == 201
    )
    clock.advance(timedelta(days=1))
    again = send(world, merchant, venue, message="n6", **window(clock, timedelta(hours=1)))
    assert again.status_code == 201, again.text


def test_a_retry_with_the_same_key_sends_one_notice(world: World, clock: MovableClock) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    visitor = world.visitor()
    world.check_in(visitor, venue)
    body = {"message": "once", **window(clock, timedelta(hours=1))}
    headers = {**bearer(merchant["token"]), "Idempotency-Key": "notice-1"}
    path = f"/v1/venues/{venue['venue_id']}/notices"
    first = world.client.post(path, json=body, headers=headers)
    again = world.client.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(notices_of(world, visitor)) == 1


def test_an_erased_visitor_leaves_no_notice_behind(
    world: World, clock: MovableClock, services: Services
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    visitor = world.visitor()
    world.check_in(visitor, venue)
    send(world, merchant, venue, message="hi", **window(clock, timedelta(hours=1)))
    assert len(notices_of(world, visitor)) == 1

    erased = world.client.delete("/v1/me", headers=bearer(visitor["token"]))

    assert erased.status_code == 204
    assert world.client.get("/v1/me/notices", headers=bearer(visitor["token"])).status_code == 401
    from uuid import UUID

    assert services.outreach.notices.notices_of(UUID(visitor["visitor_id"])) == []


def test_a_dependent_s_visit_brings_the_notice_to_the_guardian(
    world: World, clock: MovableClock
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    family = world.visitor(dependents=["小红"])
    world.check_in(family, venue, party=["小红"])
    sent = send(world, merchant, venue, message="hi", **window(clock, timedelta(hours=1)))
    assert sent.json()["reached"] == "fewer than 5"  # one family: one recipient
    assert len(notices_of(world, family)) == 1
