"""PATCH /v1/venues/{venue_id}: the owner edits a venue; codes, posters and order stay."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, bearer


def edit(world: World, merchant: dict[str, Any], venue_id: str, body: dict[str, Any]) -> Any:
    return world.client.patch(
        f"/v1/venues/{venue_id}", json=body, headers=bearer(merchant["token"])
    )


def test_the_owner_edits_a_venue_and_every_read_shows_it(world: World) -> None:
    merchant, visitor = world.merchant(), world.visitor()
    venue = world.venue(merchant, name="老王面馆", capacity=20)
    later = world.venue(merchant)
    changed = edit(
        world,
        merchant,
        venue["venue_id"],
        {"name": "老李面馆", "capacity": 35, "max_dwell_minutes": 45, "category": "noodles"},
    )
    assert changed.status_code == 200, changed.text
    answer = changed.json()
    assert (answer["name"], answer["capacity"], answer["max_dwell_minutes"]) == ("老李面馆", 35, 45)
    assert (answer["address"], answer["region"]) == (venue["address"], "110105")
    # The posters stay valid: the codes are the same.
    assert answer["code"] == venue["code"]
    shown = world.client.get(f"/v1/venues/{venue['venue_id']}", headers=bearer(merchant["token"]))
    assert shown.json()["name"] == "老李面馆"
    listed = world.client.get("/v1/venues", headers=bearer(merchant["token"])).json()["venues"]
    assert [v["venue_id"] for v in listed] == [venue["venue_id"], later["venue_id"]]
    assert listed[0]["category"] == "noodles"
    checked_in = world.check_in(visitor, venue)
    assert checked_in["venue"]["name"] == "老李面馆"


def test_a_null_capacity_removes_it_and_absent_fields_keep_their_value(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant, capacity=20, max_dwell_minutes=90)
    answer = edit(world, merchant, venue["venue_id"], {"capacity": None}).json()
    assert answer["capacity"] is None
    assert (answer["name"], answer["max_dwell_minutes"]) == (venue["name"], 90)
    unchanged = edit(world, merchant, venue["venue_id"], {})
    assert unchanged.status_code == 200
    assert unchanged.json()["name"] == venue["name"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 81},
        {"address": ""},
        {"capacity": 0},
        {"max_dwell_minutes": 4},
        {"max_dwell_minutes": None},
        {"region": "110106"},
        {"name": 5},
    ],
)
def test_an_edit_is_checked_as_a_registration_is(world: World, body: dict[str, Any]) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    response = edit(world, merchant, venue["venue_id"], body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    shown = world.client.get(f"/v1/venues/{venue['venue_id']}", headers=bearer(merchant["token"]))
    assert shown.json()["name"] == venue["name"]


def test_another_merchants_venue_cannot_be_edited(world: World) -> None:
    owner, other = world.merchant(), world.merchant()
    venue = world.venue(owner)
    response = edit(world, other, venue["venue_id"], {"name": "Mine now"})
    assert response.status_code == 404
    unknown = edit(world, other, "00000000-0000-4000-8000-000000000000", {"name": "x"})
    assert unknown.status_code == 404
    shown = world.client.get(f"/v1/venues/{venue['venue_id']}", headers=bearer(owner["token"]))
    assert shown.json()["name"] == venue["name"]
