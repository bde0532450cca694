"""Merchants over HTTP: venues, codes, rotation, till actions, occupancy (stats: test_stats_api)."""

from __future__ import annotations

import httpx
import pytest

from infrastructure.services import Services
from tests.conftest import World, bearer


def test_a_new_venue_answers_its_codes_and_their_urls(world: World) -> None:
    venue = world.venue(world.merchant())
    assert venue["checkin_url"] == f"https://fangxin.test/c/{venue['code']}"
    assert venue["checkout_url"] == f"https://fangxin.test/o/{venue['checkout_code']}"
    assert venue["code"] != venue["checkout_code"]
    assert venue["max_dwell_minutes"] == 180


def test_a_merchant_lists_only_their_own_venues(world: World) -> None:
    mine, theirs = world.merchant(), world.merchant()
    a, b = world.venue(mine), world.venue(mine)
    world.venue(theirs)
    listed = world.client.get("/v1/venues", headers=bearer(mine["token"])).json()["venues"]
    assert [v["venue_id"] for v in listed] == [a["venue_id"], b["venue_id"]]


def test_the_owner_reads_a_venue_with_its_current_codes(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant, capacity=40, max_dwell_minutes=90)
    shown = world.client.get(f"/v1/venues/{venue['venue_id']}", headers=bearer(merchant["token"]))
    assert shown.status_code == 200
    assert shown.json()["code"] == venue["code"]
    assert shown.json()["capacity"] == 40
    assert shown.json()["max_dwell_minutes"] == 90


def test_a_retried_venue_registration_creates_one_venue(world: World) -> None:
    merchant = world.merchant()
    body = {"name": "Once", "address": "1 Road", "region": "110105", "category": "cafe"}
    headers = {**bearer(merchant["token"]), "Idempotency-Key": "venue-1"}
    first = world.client.post("/v1/venues", json=body, headers=headers).json()
    again = world.client.post("/v1/venues", json=body, headers=headers).json()
    assert first["venue_id"] == again["venue_id"]
    listed = world.client.get("/v1/venues", headers=bearer(merchant["token"])).json()["venues"]
    assert len(listed) == 1


def test_a_rotated_code_is_refused(world: World) -> None:
    merchant, visitor = world.merchant(), world.visitor()
    venue = world.venue(merchant)
    rotated = world.client.post(
        f"/v1/venues/{venue['venue_id']}/code-rotations", headers=bearer(merchant["token"])
    )
    assert rotated.status_code == 201
    assert rotated.json()["code"] != venue["code"]
    old = world.client.post(
        "/v1/check-ins", json={"code": venue["code"]}, headers=bearer(visitor["token"])
    )
    assert old.status_code == 400
    assert old.json()["type"] == "/problems/venue-code-rotated"
    new = world.client.post(
        "/v1/check-ins", json={"code": rotated.json()["code"]}, headers=bearer(visitor["token"])
    )
    assert new.status_code == 201


def test_the_checkout_code_cannot_check_anyone_in(world: World) -> None:
    venue, visitor = world.venue(world.merchant()), world.visitor()
    response = world.client.post(
        "/v1/check-ins", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/wrong-code-kind"


def test_an_assisted_check_in_counts_in_occupancy(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant, capacity=10)
    response = world.client.post(
        f"/v1/venues/{venue['venue_id']}/assisted-check-ins",
        json={"name": "李奶奶", "phone": "+8613700000000"},
        headers=bearer(merchant["token"]),
    )
    assert response.status_code == 201
    assert set(response.json()) == {"visit_id", "checked_in_at"}
    occupancy = world.client.get(
        f"/v1/venues/{venue['venue_id']}/occupancy", headers=bearer(merchant["token"])
    ).json()
    assert occupancy == {"current": 1, "capacity": 10}


def test_the_till_closes_a_visit_as_payment(world: World) -> None:
    merchant, visitor = world.merchant(), world.visitor()
    venue = world.venue(merchant)
    visit = world.check_in(visitor, venue)
    response = world.client.post(
        f"/v1/venues/{venue['venue_id']}/check-outs",
        json={"visit_id": visit["visit_id"]},
        headers=bearer(merchant["token"]),
    )
    assert response.status_code == 200
    assert world.visits(visitor)[0]["checkout_reason"] == "payment"


def test_the_till_cannot_close_a_visit_at_another_venue(world: World) -> None:
    merchant = world.merchant()
    here, there = world.venue(merchant), world.venue(merchant)
    visit = world.check_in(world.visitor(), there)
    response = world.client.post(
        f"/v1/venues/{here['venue_id']}/check-outs",
        json={"visit_id": visit["visit_id"]},
        headers=bearer(merchant["token"]),
    )
    assert response.status_code == 404


def test_the_owner_prints_posters_whose_qr_holds_the_venue_urls(world: World) -> None:
    import io

    import zxingcpp
    from PIL import Image

    merchant = world.merchant()
    venue = world.venue(merchant, name="老王面馆")
    path = f"/v1/venues/{venue['venue_id']}"
    for query, url in (("", venue["checkin_url"]), ("?kind=checkout", venue["checkout_url"])):
        png = world.client.get(f"{path}/poster.png{query}", headers=bearer(merchant["token"]))
        assert png.headers["content-type"] == "image/png"
        [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
        assert decoded.text == url
    svg = world.client.get(f"{path}/poster.svg", headers=bearer(merchant["token"]))
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "老王面馆" in svg.text


def test_an_assisted_check_in_retried_before_the_read_models_show_it_answers_the_first(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)

    def assist() -> httpx.Response:
        return world.client.post(
            f"/v1/venues/{venue['venue_id']}/assisted-check-ins",
            json={"name": "李奶奶", "phone": "+8613700000000"},
            headers={**bearer(merchant["token"]), "Idempotency-Key": "counter-1"},
        )

    first = assist()
    assert first.status_code == 201
    # The retry arrives where the read models do not show the first yet (another worker's,
    # not projected): its own save conflicts, and the log has the answer.
    with monkeypatch.context() as patched:
        patched.setattr(services.app.ports.visits, "get", lambda _visit_id: None)
        again = assist()
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
