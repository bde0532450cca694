"""`/metrics` answers the admin and the metrics token only, and holds no per-case figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from infrastructure.services import Services
from infrastructure.settings import Settings
from interface.http.app import create_app
from tests.conftest import ADMIN_TOKEN, MovableClock, World, bearer

METRICS_TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def scraped(settings: Settings, services: Services) -> Iterator[World]:
    """A world whose deployment has a metrics token."""
    with_token = msgspec.structs.replace(settings, metrics_token=METRICS_TOKEN)
    with TestClient(create_app(with_token, services=services)) as client:
        yield World(client)


def assert_refused(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "fangxin_" not in response.text


def test_an_anonymous_scrape_is_refused(scraped: World) -> None:
    assert_refused(scraped.client.get("/metrics"), 401)


def test_a_scrape_with_an_unknown_token_is_refused(scraped: World) -> None:
    assert_refused(scraped.client.get("/metrics", headers=bearer(METRICS_TOKEN + "x")), 401)


def test_a_scrape_with_a_visitors_token_is_forbidden(scraped: World) -> None:
    visitor = scraped.visitor()

    assert_refused(scraped.client.get("/metrics", headers=bearer(visitor["token"])), 403)


def test_the_admin_may_scrape(scraped: World) -> None:
    response = scraped.client.get("/metrics", headers=bearer(ADMIN_TOKEN))

    assert response.status_code == 200
    assert "fangxin_http_requests_total" in response.text


def test_the_metrics_token_may_scrape(scraped: World) -> None:
    response = scraped.client.get("/metrics", headers=bearer(METRICS_TOKEN))

    assert response.status_code == 200
    assert "fangxin_http_requests_total" in response.text


def test_case_reads_leave_no_series_of_their_own(scraped: World, clock: MovableClock) -> None:
    w = scraped
    agency = w.agency(["110100"])
    tracer = bearer(w.officer(agency, "tracer")["token"])
    supervisor = bearer(w.officer(agency, "supervisor")["token"])
    venue = w.venue(w.merchant())
    index, contact = w.visitor(phone="+8613911112222"), w.visitor()
    start = clock.now()
    w.check_in(index, venue)
    w.check_in(contact, venue)
    clock.advance(timedelta(minutes=30))
    opened = w.client.post(
        "/v1/cases",
        json={
            "index": {"phone": "+8613911112222"},
            "from": (start - timedelta(hours=1)).isoformat(),
            "to": clock.now().isoformat(),
            "legal_basis": "test basis",
        },
        headers=tracer,
    )
    assert opened.status_code == 201, opened.text
    case = f"/v1/cases/{opened.json()['case_id']}"
    approved = w.client.post(f"{case}/approval", json={"approve": True}, headers=supervisor)
    assert approved.status_code == 200, approved.text
    reads = [
        w.client.get(case, headers=tracer),
        w.client.get(f"{case}/trajectory", headers=tracer),
        w.client.get(f"{case}/contacts", headers=tracer),
        w.client.post(f"{case}/contacts/{contact['visitor_id']}/details", headers=tracer),
        w.client.get(f"{case}/export?format=json", headers=tracer),
    ]
    assert [r.status_code for r in reads] == [200] * 5

    text = w.client.get("/metrics", headers=bearer(METRICS_TOKEN)).text

    series = [line for line in text.splitlines() if not line.startswith("#")]
    for private in ("/v1/cases", "/v1/exposures", "/v1/audit", "trajectory", "details", "export"):
        assert not [line for line in series if private in line], private
    tracing = 'fangxin_http_requests_total{method="GET",route="tracing",status="200"}'
    assert [line for line in series if line.startswith(tracing)] == [f"{tracing} 4"]
