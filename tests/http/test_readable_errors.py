"""A refusal says in words which field is wrong and what it must be, and repeats nothing sent."""

from __future__ import annotations

from typing import Any

from tests.conftest import World, bearer

REGION_WORDS = "a six-digit administrative division code (GB/T 2260), such as 110105"


def errors(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    found: list[dict[str, str]] = problem["errors"]
    assert problem["detail"] == "; ".join(e["message"] for e in found)
    return found


def test_a_bad_region_is_named_and_explained(world: World) -> None:
    merchant = world.merchant()
    body = {"name": "V", "address": "1 Rd", "region": "Chaoyang", "category": "food"}
    answer = world.client.post("/v1/venues", json=body, headers=bearer(merchant["token"]))
    assert errors(answer) == [{"field": "region", "message": f"region must be {REGION_WORDS}"}]
    assert "Chaoyang" not in answer.text


def test_a_refused_phone_number_is_not_repeated(world: World) -> None:
    answer = world.client.post("/v1/visitors", json={"name": "王小明", "phone": "138 0013 800x"})
    assert [e["field"] for e in errors(answer)] == ["phone"]
    assert "0013" not in answer.text
    assert "王小明" not in answer.text


def test_a_string_for_a_number_is_named(world: World) -> None:
    merchant = world.merchant()
    body = {"name": "V", "address": "1 Rd", "region": "110105", "category": "c", "capacity": "9"}
    answer = world.client.post("/v1/venues", json=body, headers=bearer(merchant["token"]))
    assert errors(answer) == [
        {"field": "capacity", "message": "capacity must be a whole number or null, not text"}
    ]


def test_the_bare_check_in_route_names_the_field_too(world: World) -> None:
    visitor = world.visitor()
    answer = world.client.post("/v1/check-ins", json={"code": 5}, headers=bearer(visitor["token"]))
    assert errors(answer) == [{"field": "code", "message": "code must be text, not a whole number"}]


def test_a_nested_field_is_named_by_its_path(world: World) -> None:
    agency = world.agency(["110000"])
    tracer = world.officer(agency, "tracer")
    body = {
        "index": {"phone": 13800138000},
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-03-02T00:00:00Z",
        "legal_basis": "lab result",
    }
    answer = world.client.post("/v1/cases", json=body, headers=bearer(tracer["token"]))
    assert errors(answer) == [
        {"field": "index.phone", "message": "index.phone must be text or null, not a whole number"}
    ]
    assert "13800138000" not in answer.text


def test_a_bad_query_parameter_lists_the_values_it_may_take(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    answer = world.client.get(
        f"/v1/venues/{venue['venue_id']}/stats?bucket=fortnight", headers=bearer(merchant["token"])
    )
    assert errors(answer) == [{"field": "bucket", "message": "bucket must be one of: hour, day"}]
    assert "fortnight" not in answer.text


def test_a_time_without_an_offset_names_its_parameter(world: World) -> None:
    visitor = world.visitor()
    answer = world.client.get(
        "/v1/me/visits?from=2026-03-04T09:30:00", headers=bearer(visitor["token"])
    )
    assert errors(answer) == [
        {"field": "from", "message": "from needs a UTC offset, e.g. 2026-03-04T09:30:00Z"}
    ]


def test_a_body_that_is_not_json_is_said_in_words(world: World) -> None:
    answer = world.client.post(
        "/v1/visitors", content=b'{"name": "A", "pho', headers={"content-type": "application/json"}
    )
    assert errors(answer) == [{"field": "", "message": "the body is not valid JSON"}]
