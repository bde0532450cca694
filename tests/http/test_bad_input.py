"""Bad input gets a clear 4xx problem answer and changes nothing; never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, bearer


def assert_problem(response: Any, status: int, problem_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"]
    if problem_type is not None:
        assert body["type"] == f"/problems/{problem_type}"


@pytest.mark.parametrize(
    "code",
    [
        "not-a-code",
        "ESjU9TEpikPgjeS2qq8ycUYAAUsZ10JaI4I",  # truncated
        "x" * 36,  # right length, forged
        "ESjU9TEpikPgjeS2qq8ycUYAAUsZ10JaI4I*",
        "",
    ],
)
def test_a_forged_or_malformed_code_is_refused(world: World, code: str) -> None:
    visitor = world.visitor()
    response = world.client.post(
        "/v1/check-ins", json={"code": code}, headers=bearer(visitor["token"])
    )
    assert_problem(response, 400)
    assert world.visits(visitor) == []


def test_a_code_with_one_flipped_character_is_refused(world: World) -> None:
    venue, visitor = world.venue(world.merchant()), world.visitor()
    code = venue["code"]
    flipped = code[:-1] + ("A" if code[-1] != "A" else "B")
    response = world.client.post(
        "/v1/check-ins", json={"code": flipped}, headers=bearer(visitor["token"])
    )
    assert_problem(response, 400, "invalid-venue-code")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "phone": "+8613800000000"},
        {"name": "A", "phone": "call me"},
        {"name": 5, "phone": "+8613800000000"},
        {"name": "A", "phone": "+8613800000000", "admin": True},
        {"name": "A"},
        {"name": "A" * 81, "phone": "+8613800000000"},
        {"name": "A", "phone": "+8613800000000", "dependents": "小明"},
        [],
        "text",
    ],
)
def test_a_bad_registration_is_refused(world: World, body: Any) -> None:
    assert_problem(world.client.post("/v1/visitors", json=body), 400, "invalid-body")


def test_a_body_that_is_not_json_is_refused(world: World) -> None:
    response = world.client.post(
        "/v1/visitors", content=b"{name:", headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


def test_an_oversized_body_is_refused(world: World) -> None:
    body = b'{"name": "' + b"a" * 100_000 + b'", "phone": "+8613800000000"}'
    response = world.client.post(
        "/v1/visitors", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer " + "a" * 500]
)
def test_a_missing_or_bad_token_is_refused(world: World, header: str | None) -> None:
    venue = world.venue(world.merchant())
    headers = {"Authorization": header} if header else {}
    response = world.client.post("/v1/check-ins", json={"code": venue["code"]}, headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_merchant_token_cannot_check_in(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    response = world.client.post(
        "/v1/check-ins", json={"code": venue["code"]}, headers=bearer(merchant["token"])
    )
    assert_problem(response, 403)


def test_a_visitor_token_cannot_register_a_venue(world: World) -> None:
    visitor = world.visitor()
    body = {"name": "V", "address": "A", "region": "110105", "category": "cafe"}
    response = world.client.post("/v1/venues", json=body, headers=bearer(visitor["token"]))
    assert_problem(response, 403)


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-03-04T09:30:00",  # no offset
        "to=2026-03-04",  # a date is not a time
        "from=yesterday",
        "from=2026-03-05T00:00:00Z&to=2026-03-04T00:00:00Z",  # reversed
        "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",  # too long
    ],
)
def test_a_bad_visit_window_is_refused(world: World, query: str) -> None:
    visitor = world.visitor()
    response = world.client.get(f"/v1/me/visits?{query}", headers=bearer(visitor["token"]))
    assert_problem(response, 400)


def test_a_time_without_offset_has_its_own_problem_type(world: World) -> None:
    visitor = world.visitor()
    response = world.client.get(
        "/v1/me/visits?from=2026-03-04T09:30:00", headers=bearer(visitor["token"])
    )
    assert_problem(response, 400, "time-without-offset")


@pytest.mark.parametrize(
    "query",
    [
        "bucket=week",
        "tz=Mars/Olympus",
        "tz=../../etc/passwd",
        "from=2026-01-01T00:00:00",
        "from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=hour",
    ],
)
def test_bad_stats_parameters_are_refused(world: World, query: str) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    response = world.client.get(
        f"/v1/venues/{venue['venue_id']}/stats?{query}", headers=bearer(merchant["token"])
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(
    ("query", "problem_type"),
    [
        ("tz=Asia/Kathmandu", "time-zone-not-whole-hours"),
        ("tz=Asia/Kolkata&bucket=day", "time-zone-not-whole-hours"),
        ("from=2026-01-01T00:00:00Z&to=2026-04-03T00:00:01Z&bucket=day", "too-many-buckets"),
        ("from=2026-01-01T00:00:00Z&to=2026-04-04T00:00:00Z&bucket=hour", "too-many-buckets"),
    ],
)
def test_stats_refuse_zones_off_whole_hours_and_windows_over_92_days(
    world: World, query: str, problem_type: str
) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    response = world.client.get(
        f"/v1/venues/{venue['venue_id']}/stats?{query}", headers=bearer(merchant["token"])
    )
    assert_problem(response, 400, problem_type)


EXTREME_TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-12:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-12:00",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:01Z",
]


def time_route(world: World, route: str) -> tuple[str, dict[str, str]]:
    """A route taking `from` and `to`, and the headers of someone allowed to ask it."""
    if route == "stats":
        merchant = world.merchant()
        return f"/v1/venues/{world.venue(merchant)['venue_id']}/stats", bearer(merchant["token"])
    if route == "visits":
        return "/v1/me/visits", bearer(world.visitor()["token"])
    return "/v1/audit", bearer(world.auditor()["token"])


@pytest.mark.parametrize("value", EXTREME_TIMES)
@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("route", ["stats", "visits", "audit"])
def test_a_time_outside_the_accepted_years_is_refused_naming_its_parameter(
    world: World, route: str, name: str, value: str
) -> None:
    path, headers = time_route(world, route)
    response = world.client.get(path, params={name: value}, headers=headers)
    assert_problem(response, 400, "time-out-of-range")
    problem = response.json()
    assert problem["detail"].startswith(f"{name} must lie between")
    assert problem["errors"] == [{"field": name, "message": problem["detail"]}]


@pytest.mark.parametrize(
    ("route", "query"),
    [
        ("stats", "from=9999-12-31T23:30:00Z&to=9999-12-31T23:59:59Z"),
        ("stats", "to=0001-01-01T00:00:00Z"),
        ("visits", "to=0001-01-01T00:00:00Z"),
    ],
)
def test_the_times_that_answered_500_answer_400(world: World, route: str, query: str) -> None:
    path, headers = time_route(world, route)
    assert_problem(world.client.get(f"{path}?{query}", headers=headers), 400, "time-out-of-range")


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("stats", {"from": "2000-01-01T00:00:00-12:00", "to": "2000-01-03T00:00:00+14:00"}),
        (
            "stats",
            {
                "from": "2099-12-31T00:00:00+14:00",
                "to": "2100-01-01T00:00:00Z",
                "bucket": "day",
                "tz": "Etc/GMT+12",
            },
        ),
        ("visits", {"to": "2000-01-01T00:00:00Z"}),
        ("visits", {"from": "2099-12-31T00:00:00+14:00", "to": "2100-01-01T00:00:00Z"}),
        ("audit", {"from": "2000-01-01T00:00:00-12:00", "to": "2100-01-01T00:00:00+14:00"}),
    ],
)
def test_times_at_the_ends_of_the_accepted_years_are_answered(
    world: World, route: str, params: dict[str, str]
) -> None:
    path, headers = time_route(world, route)
    response = world.client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"visit_id": "not-a-uuid"},
        {"visit_id": "6f1c2a8e-3d0b-4c57-9a51-0e4d2f6b7a10", "code": "x"},
        {"code": 12},
    ],
)
def test_a_bad_check_out_is_refused(world: World, body: Any) -> None:
    visitor = world.visitor()
    response = world.client.post("/v1/check-outs", json=body, headers=bearer(visitor["token"]))
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "V", "address": "A", "region": "11010", "category": "c"},
        {"name": "V", "address": "A", "region": "110105", "category": "c", "capacity": 0},
        {"name": "V", "address": "A", "region": "110105", "category": "c", "capacity": "9"},
        {"name": "V", "address": "A", "region": "110105", "category": "c", "max_dwell_minutes": 1},
    ],
)
def test_a_bad_venue_is_refused(world: World, body: Any) -> None:
    merchant = world.merchant()
    response = world.client.post("/v1/venues", json=body, headers=bearer(merchant["token"]))
    assert_problem(response, 400)
    assert world.client.get("/v1/venues", headers=bearer(merchant["token"])).json()["venues"] == []


def test_an_unknown_path_is_a_problem_not_found(world: World) -> None:
    assert_problem(world.client.get("/v1/nothing-here"), 404)


def test_a_malformed_venue_id_is_not_found(world: World) -> None:
    merchant = world.merchant()
    response = world.client.get("/v1/venues/not-a-uuid", headers=bearer(merchant["token"]))
    assert response.status_code in (400, 404)
    assert response.headers["content-type"].startswith("application/problem+json")


def test_error_details_never_echo_personal_data(world: World) -> None:
    response = world.client.post("/v1/visitors", json={"name": "张三丰", "phone": "13800 x"})
    assert_problem(response, 400)
    assert "张三丰" not in response.text
    assert "13800" not in response.text
