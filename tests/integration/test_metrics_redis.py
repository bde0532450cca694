"""Metrics summed across workers in the real local Redis, each test under its own hash.

Without CI the tests skip when Redis is unreachable; with CI set they fail.
"""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infrastructure.ops.metrics import Metrics

pytestmark = pytest.mark.integration


@pytest.fixture
def key(redis_prefix: str) -> str:
    return redis_prefix + "metrics"


def test_every_worker_renders_the_deployments_totals(redis_client: redis.Redis, key: str) -> None:
    first, second = Metrics(redis_client, redis_key=key), Metrics(redis_client, redis_key=key)
    first.observe_request("POST", "/v1/check-ins", 201, 0.02)
    first.count_check_in()
    second.observe_request("POST", "/v1/check-ins", 201, 0.03)
    second.count_check_in()
    second.flush()

    text = first.render()

    assert (
        'fangxin_http_requests_total{method="POST",route="/v1/check-ins",status="201"} 2'
        in text.splitlines()
    )
    assert "fangxin_check_ins_total 2" in text.splitlines()
    assert 'fangxin_http_request_duration_seconds_count{route="/v1/check-ins"} 2' in text


def test_flushing_twice_adds_nothing_the_second_time(redis_client: redis.Redis, key: str) -> None:
    metrics = Metrics(redis_client, redis_key=key)
    metrics.count_check_in(5)
    metrics.flush()
    metrics.flush()

    assert int(redis_client.hget(key, "chk") or 0) == 5


def test_stop_flushes_what_is_left(redis_client: redis.Redis, key: str) -> None:
    metrics = Metrics(redis_client, redis_key=key)
    metrics.start(interval=60)
    metrics.count_check_in(3)

    metrics.stop()

    assert int(redis_client.hget(key, "chk") or 0) == 3


def test_counts_made_while_redis_is_down_are_flushed_later(
    redis_client: redis.Redis, key: str
) -> None:
    unreachable = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0)
    )
    metrics = Metrics(unreachable, redis_key=key)
    metrics.count_check_in(4)
    metrics.flush()
    metrics._client = redis_client

    metrics.flush()

    assert int(redis_client.hget(key, "chk") or 0) == 4
    unreachable.close()
