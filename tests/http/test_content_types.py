"""Answers carry one Content-Type each, with its charset once; durations are whole seconds."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import ADMIN_TOKEN, MovableClock, World, bearer


def approved_case(world: World, clock: MovableClock) -> tuple[str, str]:
    agency = world.agency(["110000"])
    tracer, supervisor = world.officer(agency, "tracer"), world.officer(agency, "supervisor")
    world.check_in(world.visitor(phone="+8613911112222"), world.venue(world.merchant()))
    start = clock.now()
    clock.advance(timedelta(minutes=5))
    opened = world.client.post(
        "/v1/cases",
        json={
            "index": {"phone": "+8613911112222"},
            "from": (start - timedelta(minutes=1)).isoformat(),
            "to": clock.now().isoformat(),
            "legal_basis": "confirmed by lab",
        },
        headers=bearer(tracer["token"]),
    )
    case_id: str = opened.json()["case_id"]
    world.client.post(
        f"/v1/cases/{case_id}/approval", json={"approve": True}, headers=bearer(supervisor["token"])
    )
    return case_id, tracer["token"]


def test_a_csv_export_names_its_charset_once(world: World, clock: MovableClock) -> None:
    case_id, token = approved_case(world, clock)
    csv = world.client.get(f"/v1/cases/{case_id}/export?format=csv", headers=bearer(token))
    data = world.client.get(f"/v1/cases/{case_id}/export?format=json", headers=bearer(token))
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert data.headers["content-type"] == "application/json"
    assert data.json()["case_id"] == case_id


def test_pages_and_metrics_name_their_charset_once(world: World) -> None:
    venue = world.venue(world.merchant())
    page = world.client.get(f"/c/{venue['code']}")
    script = world.client.get("/static/shopper.js")
    metrics = world.client.get("/metrics", headers=bearer(ADMIN_TOKEN))
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_a_dwell_is_whole_seconds(world: World, clock: MovableClock) -> None:
    visitor = world.visitor()
    visit = world.check_in(visitor, world.venue(world.merchant()))
    clock.advance(timedelta(seconds=21.819536))
    answer = world.client.post(
        "/v1/check-outs", json={"visit_id": visit["visit_id"]}, headers=bearer(visitor["token"])
    )
    assert answer.status_code == 200, answer.text
    assert answer.text.count('"dwell_seconds":21,') + answer.text.count('"dwell_seconds":21}') == 1
