"""Prometheus rendering of the in-process metrics, and the middleware counting by route."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.testing import create_test_client

from infrastructure.eventstore.group_commit import BatchStats
from infrastructure.ops.metrics import Metrics, render
from interface.http.observability import (
    ObservabilityMiddleware,
    observability_handlers,
    render_batches,
)
from interface.http.problems import exception_handlers


def lines_of(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_an_empty_registry_renders_every_family_with_help_and_type() -> None:
    text = Metrics().render()

    assert "# TYPE fangxin_http_requests_total counter" in text
    assert "# TYPE fangxin_check_ins_total counter" in text
    assert "# TYPE fangxin_http_request_duration_seconds histogram" in text
    assert "# TYPE fangxin_projection_lag_events gauge" in text
    assert "# TYPE fangxin_projection_position gauge" in text
    assert "fangxin_check_ins_total 0" in text.splitlines()
    assert text.endswith("\n")


def test_requests_are_counted_by_method_route_and_status() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/v1/me/visits", 200, 0.01)
    metrics.observe_request("GET", "/v1/me/visits", 200, 0.02)
    metrics.observe_request("POST", "/v1/check-ins", 429, 0.001)

    requests = lines_of(metrics.render(), "fangxin_http_requests_total{")

    assert requests == [
        'fangxin_http_requests_total{method="GET",route="/v1/me/visits",status="200"} 2',
        'fangxin_http_requests_total{method="POST",route="/v1/check-ins",status="429"} 1',
    ]


def test_durations_fill_cumulative_buckets_ending_in_the_count() -> None:
    metrics = Metrics(buckets=(0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        metrics.observe_request("GET", "/r", 200, seconds)

    text = metrics.render()

    assert lines_of(text, "fangxin_http_request_duration_seconds") == [
        'fangxin_http_request_duration_seconds_bucket{route="/r",le="0.1"} 2',
        'fangxin_http_request_duration_seconds_bucket{route="/r",le="1"} 3',
        'fangxin_http_request_duration_seconds_bucket{route="/r",le="+Inf"} 4',
        'fangxin_http_request_duration_seconds_sum{route="/r"} 3.65',
        'fangxin_http_request_duration_seconds_count{route="/r"} 4',
    ]


def test_check_ins_are_counted() -> None:
    metrics = Metrics()
    metrics.count_check_in()
    metrics.count_check_in(2)

    assert "fangxin_check_ins_total 3" in metrics.render().splitlines()


def test_projection_positions_and_lag_are_rendered_as_gauges() -> None:
    text = Metrics().render({"visits": (120, 3), "stats": (118, 5)})

    assert lines_of(text, "fangxin_projection_") == [
        'fangxin_projection_position{projection="stats"} 118',
        'fangxin_projection_position{projection="visits"} 120',
        'fangxin_projection_lag_events{projection="stats"} 5',
        'fangxin_projection_lag_events{projection="visits"} 3',
    ]


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", 'a"b\\c\nd', 200, 0.0)

    assert 'route="a\\"b\\\\c\\nd"' in metrics.render()


def test_unknown_methods_are_counted_as_other() -> None:
    metrics = Metrics()
    metrics.observe_request("BREW", "/r", 405, 0.0)

    assert 'method="OTHER"' in metrics.render()


def test_counts_from_many_threads_add_up() -> None:
    metrics = Metrics()

    def count() -> None:
        for _ in range(1000):
            metrics.observe_request("GET", "/r", 200, 0.001)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert 'fangxin_http_requests_total{method="GET",route="/r",status="200"} 8000' in (
        metrics.render().splitlines()
    )


def test_render_reads_sample_fields_as_stored_in_redis() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/r", 200, 0.2)

    assert render(metrics.samples(), {}) == metrics.render()


@get("/v1/venues/{venue_id:uuid}")
async def show_venue(venue_id: FromPath[uuid.UUID]) -> dict[str, str]:
    if venue_id.int == 0:
        raise NotFoundException("no such venue")
    return {"id": str(venue_id)}


SCRAPER = "scraper-token-0123456789abcdef"
SCRAPING = {"Authorization": f"Bearer {SCRAPER}"}


def app_client(metrics: Metrics, **state: Any) -> Any:
    return create_test_client(
        [show_venue, *observability_handlers],
        middleware=[ObservabilityMiddleware()],
        state=State({"metrics": metrics, "metrics_token": SCRAPER, **state}),
        exception_handlers=exception_handlers,
        debug=False,
    )


def test_a_request_is_counted_under_its_route_template_not_its_path() -> None:
    metrics = Metrics()
    first, second = uuid.uuid4(), uuid.uuid4()
    with app_client(metrics) as client:
        client.get(f"/v1/venues/{first}")
        client.get(f"/v1/venues/{second}")

    text = metrics.render()

    assert (
        'fangxin_http_requests_total{method="GET",route="/v1/venues/{venue_id}",status="200"} 2'
        in text.splitlines()
    )
    assert str(first) not in text
    assert str(second) not in text


def test_an_error_answer_is_counted_with_its_status() -> None:
    metrics = Metrics()
    with app_client(metrics) as client:
        client.get(f"/v1/venues/{uuid.UUID(int=0)}")

    assert 'route="/v1/venues/{venue_id}",status="404"} 1' in metrics.render()


def test_the_metrics_endpoint_serves_the_text_format_with_projection_lag() -> None:
    metrics = Metrics()
    with app_client(metrics, projection_lag=lambda: {"visits": (7, 2)}) as client:
        client.get(f"/v1/venues/{uuid.uuid4()}")
        response = client.get("/metrics", headers=SCRAPING)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'fangxin_projection_lag_events{projection="visits"} 2' in response.text
    assert 'route="/v1/venues/{venue_id}"' in response.text


def test_the_metrics_endpoint_refuses_a_request_without_a_token() -> None:
    with app_client(Metrics()) as client:
        response = client.get("/metrics")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "fangxin_" not in response.text


def test_the_metrics_endpoint_refuses_a_wrong_token() -> None:
    with app_client(Metrics()) as client:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER}x"})

    assert response.status_code == 401
    assert "fangxin_" not in response.text


def test_without_a_metrics_token_configured_no_token_opens_the_endpoint() -> None:
    with app_client(Metrics(), metrics_token="") as client:
        response = client.get("/metrics", headers={"Authorization": "Bearer "})
        anything = client.get("/metrics", headers={"Authorization": "Bearer x"})

    assert (response.status_code, anything.status_code) == (401, 401)


TRACING_TEMPLATES = [
    "/v1/cases",
    "/v1/cases/{case_id}",
    "/v1/cases/{case_id}/trajectory",
    "/v1/cases/{case_id}/contacts",
    "/v1/cases/{case_id}/contacts/{visitor_id}/details",
    "/v1/cases/{case_id}/export",
    "/v1/exposures",
    "/v1/audit",
]


def test_tracing_work_is_counted_under_one_route_not_by_route() -> None:
    metrics = Metrics()
    for route in TRACING_TEMPLATES:
        metrics.observe_request("GET", route, 200, 0.01)
    metrics.observe_request("GET", "/v1/cases/{case_id}/export", 503, 0.01)
    metrics.observe_request("GET", "/v1/me/visits", 200, 0.01)

    text = metrics.render()

    assert lines_of(text, "fangxin_http_requests_total{") == [
        'fangxin_http_requests_total{method="GET",route="/v1/me/visits",status="200"} 1',
        'fangxin_http_requests_total{method="GET",route="tracing",status="200"} 8',
        'fangxin_http_requests_total{method="GET",route="tracing",status="503"} 1',
    ]
    assert 'fangxin_http_request_duration_seconds_count{route="tracing"} 9' in text.splitlines()
    assert "/v1/cases" not in text
    assert "/v1/exposures" not in text
    assert "/v1/audit" not in text


def test_figures_stored_by_tracing_route_are_rendered_together() -> None:
    # As an earlier version flushed them to Redis, one series per route.
    stored = {
        "req\tGET\t/v1/cases/{case_id}/trajectory\t200": 3,
        "req\tPOST\t/v1/cases/{case_id}/contacts/{visitor_id}/details\t200": 2,
        "req\tGET\t/v1/cases/{case_id}/export\t200": 1,
        "hb\t/v1/cases/{case_id}/trajectory\t0.01": 3,
        "hb\t/v1/cases/{case_id}/export\t0.01": 1,
        "hs\t/v1/cases/{case_id}/trajectory": 0.02,
        "hs\t/v1/cases/{case_id}/export": 0.01,
        "hc\t/v1/cases/{case_id}/trajectory": 3,
        "hc\t/v1/cases/{case_id}/export": 1,
    }

    text = render(stored, {})

    assert lines_of(text, "fangxin_http_requests_total{") == [
        'fangxin_http_requests_total{method="GET",route="tracing",status="200"} 4',
        'fangxin_http_requests_total{method="POST",route="tracing",status="200"} 2',
    ]
    assert 'fangxin_http_request_duration_seconds_bucket{route="tracing",le="0.01"} 4' in text
    assert 'fangxin_http_request_duration_seconds_count{route="tracing"} 4' in text
    assert "/v1/cases" not in text


def test_without_metrics_on_the_state_the_middleware_stays_out_of_the_way() -> None:
    with create_test_client(
        [show_venue], middleware=[ObservabilityMiddleware()], debug=False
    ) as client:
        assert client.get(f"/v1/venues/{uuid.uuid4()}").status_code == 200


def test_group_commit_figures_name_batches_sizes_refused_and_retried_writers() -> None:
    stats = BatchStats()
    for size in (1, 3, 3, 9):
        stats.record(size)
    stats.refused, stats.retried_alone = 4, 2
    text = render_batches(stats)
    pid = f'pid="{os.getpid()}"'
    assert lines_of(text, "fangxin_group_commit_batches_total") == [
        f"fangxin_group_commit_batches_total{{{pid}}} 4"
    ]
    assert lines_of(text, "fangxin_group_commit_items_total") == [
        f"fangxin_group_commit_items_total{{{pid}}} 16"
    ]
    assert lines_of(text, "fangxin_group_commit_refused_total") == [
        f"fangxin_group_commit_refused_total{{{pid}}} 4"
    ]
    assert lines_of(text, "fangxin_group_commit_retried_alone_total") == [
        f"fangxin_group_commit_retried_alone_total{{{pid}}} 2"
    ]
    assert lines_of(text, "fangxin_group_commit_batch_size") == [
        f'fangxin_group_commit_batch_size{{{pid},le="1"}} 1',
        f'fangxin_group_commit_batch_size{{{pid},le="4"}} 2',
        f'fangxin_group_commit_batch_size{{{pid},le="16"}} 1',
    ]
