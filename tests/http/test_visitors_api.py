"""Shoppers over HTTP: register, check in and out, history, erasure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import MovableClock, World, bearer


def test_a_registration_answers_a_visitor_id_and_a_long_random_token(world: World) -> None:
    visitor = world.visitor()
    assert len(visitor["token"]) >= 22  # 128 bits in URL-safe base64
    assert visitor["visitor_id"] != world.visitor()["visitor_id"]


def test_two_registrations_with_one_phone_are_two_visitors(world: World) -> None:
    first = world.visitor(phone="+8613800000001")
    second = world.visitor(phone="+8613800000001")
    assert first["visitor_id"] != second["visitor_id"]


def test_a_retried_registration_returns_the_first_answer(client: TestClient[Any]) -> None:
    body = {"name": "Retry", "phone": "+8613800000002"}
    headers = {"Idempotency-Key": "3f6c0a52-reg-1-retry"}
    first = client.post("/v1/visitors", json=body, headers=headers)
    again = client.post("/v1/visitors", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()


def test_a_registration_is_replayed_with_its_token_only_for_ten_minutes(
    client: TestClient[Any], clock: MovableClock
) -> None:
    body = {"name": "Replay", "phone": "+8613800000005"}
    headers = {"Idempotency-Key": "0b6e2d9c-0f0e-4d8a-9a57-7d2b1f3c5e11"}
    first = client.post("/v1/visitors", json=body, headers=headers)
    clock.advance(timedelta(minutes=9))
    soon = client.post("/v1/visitors", json=body, headers=headers)
    assert soon.json() == first.json()
    clock.advance(timedelta(minutes=2))
    # Whoever sends the key and body later (it may be seen in a log) gets no token.
    late = client.post("/v1/visitors", json=body, headers=headers)
    assert late.status_code == 409
    assert first.json()["token"] not in late.text


@pytest.mark.parametrize("path", ["/v1/visitors", "/v1/merchants"])
def test_an_anonymous_registration_refuses_a_guessable_idempotency_key(
    client: TestClient[Any], path: str
) -> None:
    phone = "contact_phone" if path == "/v1/merchants" else "phone"
    body = {"name": "Short", phone: "+8613800000006"}
    response = client.post(path, json=body, headers={"Idempotency-Key": "1"})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]


def test_an_idempotency_key_reused_with_another_body_is_refused(client: TestClient[Any]) -> None:
    headers = {"Idempotency-Key": "3f6c0a52-reg-2-other"}
    client.post("/v1/visitors", json={"name": "A", "phone": "+8613800000003"}, headers=headers)
    other = client.post(
        "/v1/visitors", json={"name": "B", "phone": "+8613800000004"}, headers=headers
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")


def test_a_check_in_answers_the_visit_and_the_venue(world: World) -> None:
    venue = world.venue(world.merchant(), name="老王面馆")
    visit = world.check_in(world.visitor(), venue)
    assert visit["venue"] == {"venue_id": venue["venue_id"], "name": "老王面馆"}
    assert visit["checked_in_at"].endswith("Z")


def test_a_retried_scan_with_the_same_key_creates_nothing_new(world: World) -> None:
    visitor, venue = world.visitor(), world.venue(world.merchant())
    headers = {**bearer(visitor["token"]), "Idempotency-Key": "scan-1"}
    first = world.client.post("/v1/check-ins", json={"code": venue["code"]}, headers=headers)
    again = world.client.post("/v1/check-ins", json={"code": venue["code"]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["visit_id"] == again.json()["visit_id"]
    assert len(world.visits(visitor)) == 1


def test_checking_in_elsewhere_closes_the_open_visit_as_superseded(world: World) -> None:
    merchant = world.merchant()
    visitor = world.visitor()
    first = world.check_in(visitor, world.venue(merchant))
    world.check_in(visitor, world.venue(merchant))
    visits = {v["visit_id"]: v for v in world.visits(visitor)}
    assert visits[first["visit_id"]]["checkout_reason"] == "superseded"
    assert [v["checked_out_at"] for v in visits.values()].count(None) == 1


def test_scanning_the_checkout_code_closes_the_visit_as_payment(world: World) -> None:
    visitor, venue = world.visitor(), world.venue(world.merchant())
    visit = world.check_in(visitor, venue)
    response = world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 200
    assert response.json()["visit_id"] == visit["visit_id"]
    assert response.json()["dwell_seconds"] >= 0
    assert world.visits(visitor)[0]["checkout_reason"] == "payment"


def test_scanning_the_entry_code_again_to_leave_closes_the_visit_as_scan(world: World) -> None:
    visitor, venue = world.visitor(), world.venue(world.merchant())
    world.check_in(visitor, venue)
    response = world.client.post(
        "/v1/check-outs", json={"code": venue["code"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 200
    assert world.visits(visitor)[0]["checkout_reason"] == "scan"


def test_pressing_check_out_closes_the_visit_as_manual(world: World) -> None:
    visitor, venue = world.visitor(), world.venue(world.merchant())
    visit = world.check_in(visitor, venue)
    response = world.client.post(
        "/v1/check-outs", json={"visit_id": visit["visit_id"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 200
    assert world.visits(visitor)[0]["checkout_reason"] == "manual"


def test_checking_out_twice_is_a_conflict(world: World) -> None:
    visitor, venue = world.visitor(), world.venue(world.merchant())
    visit = world.check_in(visitor, venue)
    body = {"visit_id": visit["visit_id"]}
    world.client.post("/v1/check-outs", json=body, headers=bearer(visitor["token"]))
    again = world.client.post("/v1/check-outs", json=body, headers=bearer(visitor["token"]))
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/visit-already-closed"


def test_checking_out_where_nothing_is_open_is_a_conflict(world: World) -> None:
    visitor, venue = world.visitor(), world.venue(world.merchant())
    response = world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 409


def test_someone_elses_visit_cannot_be_checked_out(world: World) -> None:
    venue = world.venue(world.merchant())
    visit = world.check_in(world.visitor(), venue)
    response = world.client.post(
        "/v1/check-outs",
        json={"visit_id": visit["visit_id"]},
        headers=bearer(world.visitor()["token"]),
    )
    assert response.status_code == 404


def test_a_party_check_in_makes_one_visit_per_member(world: World) -> None:
    visitor = world.visitor(dependents=["小红", "小明"])
    venue = world.venue(world.merchant())
    visit = world.check_in(visitor, venue, party=["小红", "小明"])
    assert len(visit["party_visit_ids"]) == 2
    people = sorted(v["person"] for v in world.visits(visitor))
    assert people == ["self", "小明", "小红"]


def test_the_checkout_code_closes_the_whole_party(world: World) -> None:
    visitor = world.visitor(dependents=["小红"])
    venue = world.venue(world.merchant())
    world.check_in(visitor, venue, party=["小红"])
    world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    assert {v["checkout_reason"] for v in world.visits(visitor)} == {"payment"}


def test_a_party_naming_a_stranger_is_refused(world: World) -> None:
    visitor, venue = world.visitor(dependents=["小红"]), world.venue(world.merchant())
    response = world.client.post(
        "/v1/check-ins",
        json={"code": venue["code"], "party": ["陌生人"]},
        headers=bearer(visitor["token"]),
    )
    assert response.status_code == 400
    assert world.visits(visitor) == []


def test_visits_are_listed_oldest_first_and_an_open_visit_has_no_check_out(
    world: World, clock: MovableClock
) -> None:
    merchant, visitor = world.merchant(), world.visitor()
    first = world.check_in(visitor, world.venue(merchant))
    clock.advance(timedelta(minutes=5))
    second = world.check_in(visitor, world.venue(merchant))
    visits = world.visits(visitor)
    assert [v["visit_id"] for v in visits] == [first["visit_id"], second["visit_id"]]
    assert visits[1]["checked_out_at"] is None


def test_the_visit_window_can_be_chosen(world: World) -> None:
    visitor = world.visitor()
    world.check_in(visitor, world.venue(world.merchant()))
    response = world.client.get(
        "/v1/me/visits?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00%2B08:00",
        headers=bearer(visitor["token"]),
    )
    assert response.status_code == 200
    assert response.json()["visits"] == []


def test_erasing_makes_the_token_stop_working(world: World) -> None:
    visitor = world.visitor()
    world.check_in(visitor, world.venue(world.merchant()))
    response = world.client.delete("/v1/me", headers=bearer(visitor["token"]))
    assert response.status_code == 204
    after = world.client.get("/v1/me/visits", headers=bearer(visitor["token"]))
    assert after.status_code == 401


def test_an_erased_visitors_visits_leave_the_venue_statistics_counts_intact_of_others(
    world: World,
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    leaving, staying = world.visitor(), world.visitor()
    world.check_in(leaving, venue)
    world.check_in(staying, venue)
    world.client.delete("/v1/me", headers=bearer(leaving["token"]))
    occupancy = world.client.get(
        f"/v1/venues/{venue['venue_id']}/occupancy", headers=bearer(merchant["token"])
    ).json()
    assert occupancy["current"] == 1
    assert len(world.visits(staying)) == 1


def test_checking_in_again_at_the_same_venue_starts_a_new_visit(
    world: World, clock: MovableClock
) -> None:
    visitor, venue = world.visitor(), world.venue(world.merchant())
    first = world.check_in(visitor, venue)
    clock.advance(timedelta(minutes=20))
    second = world.check_in(visitor, venue)
    assert first["visit_id"] != second["visit_id"]
    reasons = [v["checkout_reason"] for v in world.visits(visitor)]
    assert reasons == ["superseded", None]
