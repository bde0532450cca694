"""Regions over HTTP: jurisdictions and venue regions are codes of the national list, named."""

from __future__ import annotations

import pytest

from domain.ids import derive_id
from infrastructure.services import Services
from tests.conftest import ADMIN_TOKEN, World, bearer


def admin(key: str) -> dict[str, str]:
    return {**bearer(ADMIN_TOKEN), "Idempotency-Key": key}


@pytest.mark.parametrize(
    "jurisdiction",
    [["000000"], ["999999"], ["110199"], ["110000", "000000"]],
    ids=["the-whole-country", "no-such-province", "no-such-county", "one-bad-among-good"],
)
def test_an_agency_over_a_code_that_does_not_exist_is_refused_and_not_made(
    world: World, services: Services, jurisdiction: list[str]
) -> None:
    # Given a jurisdiction holding a code that is not on the national list.
    bad = next(code for code in jurisdiction if code != "110000")
    # When the admin creates the agency.
    refused = world.client.post(
        "/v1/agencies",
        json={"name": "All-seeing", "jurisdiction": jurisdiction},
        headers=admin("k1"),
    )
    # Then it is refused, the problem names the bad code, and no agency exists.
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert problem["type"] == "/problems/unknown-region"
    assert bad in problem["detail"]
    assert "110000" not in problem["detail"]
    assert services.directory.agency(derive_id("agency", "k1")) is None


def test_an_agency_over_a_province_a_city_and_a_county_answers_their_names(world: World) -> None:
    created = world.client.post(
        "/v1/agencies",
        json={"name": "Health", "jurisdiction": ["310000", "110105", "110100", "110000"]},
        headers=bearer(ADMIN_TOKEN),
    )
    assert created.status_code == 201, created.text
    assert created.json()["jurisdiction"] == [
        {"region": "110000", "name": "北京市"},
        {"region": "110100", "name": "北京市市辖区"},
        {"region": "110105", "name": "朝阳区"},
        {"region": "310000", "name": "上海市"},
    ]


def test_a_retried_agency_answers_the_jurisdiction_it_was_made_with(world: World) -> None:
    body = {"name": "Health", "jurisdiction": ["110000"]}
    first = world.client.post("/v1/agencies", json=body, headers=admin("same"))
    again = world.client.post(
        "/v1/agencies", json={**body, "jurisdiction": ["310000"]}, headers=admin("same")
    )
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.json()["jurisdiction"] == [{"region": "110000", "name": "北京市"}]


@pytest.mark.parametrize("region", ["000000", "999999", "110199", "110000", "110100"])
def test_a_venue_outside_any_county_of_the_list_is_refused(world: World, region: str) -> None:
    merchant = world.merchant()
    refused = world.client.post(
        "/v1/venues",
        json={"name": "V", "address": "1 Rd", "region": region, "category": "cafe"},
        headers=bearer(merchant["token"]),
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["type"] == "/problems/unknown-region"
    assert region in refused.json()["detail"]
    listed = world.client.get("/v1/venues", headers=bearer(merchant["token"]))
    assert listed.json()["venues"] == []


@pytest.mark.parametrize(
    ("region", "name"),
    [("110105", "朝阳区"), ("320583", "昆山市"), ("429004", "仙桃市"), ("441900", "东莞市")],
)
def test_a_venue_answer_names_its_region(world: World, region: str, name: str) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant, region=region)
    assert venue["region"] == region
    assert venue["region_name"] == name
    token = bearer(merchant["token"])
    shown = world.client.get(f"/v1/venues/{venue['venue_id']}", headers=token).json()
    assert shown["region_name"] == name
    listed = world.client.get("/v1/venues", headers=token).json()["venues"]
    assert [v["region_name"] for v in listed] == [name]
