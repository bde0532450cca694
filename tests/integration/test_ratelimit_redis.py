"""The Redis rate limiter against the real local Redis, each test under its own key prefix.

Without CI the tests skip when Redis is unreachable; with CI set they fail.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infrastructure.ops.ratelimit import RateLimiter
from infrastructure.readmodels.redis.cluster import by_slot
from infrastructure.readmodels.redis.loop import LoopClients
from tests.integration.conftest import REDIS_CLUSTER, REDIS_URL, redis_of

pytestmark = pytest.mark.integration


def test_the_counter_expires_with_its_window(redis_client: redis.Redis, redis_prefix: str) -> None:
    RateLimiter(redis_client, 5, prefix=redis_prefix).hit("a")

    ttl = redis_client.pttl(redis_prefix + "a")

    assert 0 < ttl <= 60_000


def test_a_counter_that_lost_its_expiry_gets_it_back(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    redis_client.set(redis_prefix + "a", 7)
    limiter = RateLimiter(redis_client, 5, prefix=redis_prefix)

    wait = limiter.hit("a")

    assert wait == pytest.approx(60, abs=1)
    assert redis_client.pttl(redis_prefix + "a") > 0


def test_workers_share_one_count(redis_client: redis.Redis, redis_prefix: str) -> None:
    other_worker = redis_of()
    first = RateLimiter(redis_client, 2, prefix=redis_prefix)
    second = RateLimiter(other_worker, 2, prefix=redis_prefix)
    first.hit("a")
    second.hit("a")

    assert first.hit("a") is not None
    other_worker.close()


def test_a_limit_of_zero_never_touches_redis(redis_prefix: str) -> None:
    unreachable = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0)
    )
    limiter = RateLimiter(unreachable, 0, prefix=redis_prefix)

    assert all(limiter.hit("a") is None for _ in range(100))
    unreachable.close()


def test_an_unreachable_redis_lets_requests_through_with_a_warning(
    redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0)
    )
    limiter = RateLimiter(unreachable, 1, prefix=redis_prefix)

    with caplog.at_level("WARNING", logger="fangxin.ratelimit"):
        assert limiter.hit("a") is None

    assert [r.getMessage() for r in caplog.records] == ["rate limiter unavailable"]
    unreachable.close()


def test_concurrent_hits_on_the_event_loop_are_each_counted_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    loop_clients = LoopClients(REDIS_URL, REDIS_CLUSTER)
    limiter = RateLimiter(redis_client, 5, prefix=redis_prefix, loop_clients=loop_clients)

    async def hit_many() -> list[float | None]:
        try:
            return await asyncio.gather(
                *(limiter.hit_async("shared") for _ in range(8)),
                *(limiter.hit_async(f"own{i}") for i in range(3)),
            )
        finally:
            await loop_clients.close()

    waits = asyncio.run(hit_many())
    shared, own = waits[:8], waits[8:]
    assert shared[:5] == [None] * 5
    assert all(w is not None and 0 < w <= 60 for w in shared[5:])
    assert own == [None, None, None]
    assert int(redis_client.get(redis_prefix + "shared") or 0) == 8
    assert limiter.hit("shared") is not None  # the sync path counts on the same counter


def test_the_event_loop_path_fails_open_when_redis_is_unreachable(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    loop_clients = LoopClients("redis://127.0.0.1:1/0")
    limiter = RateLimiter(redis_client, 1, prefix=redis_prefix, loop_clients=loop_clients)

    async def hit_twice() -> list[float | None]:
        try:
            return [await limiter.hit_async("a"), await limiter.hit_async("a")]
        finally:
            await loop_clients.close()

    assert asyncio.run(hit_twice()) == [None, None]


def test_concurrent_hits_on_buckets_of_many_slots_are_each_counted(
    redis_client: redis.Redis,
) -> None:
    # Untagged bucket names, as production's: on a cluster they lie in many slots.
    prefix = f"fxtest:rl:{uuid.uuid4().hex}:"
    buckets = [f"b{i}" for i in range(12)]
    assert len(by_slot([prefix + b for b in buckets])) > 1
    loop_clients = LoopClients(REDIS_URL, REDIS_CLUSTER)
    limiter = RateLimiter(redis_client, 1, prefix=prefix, loop_clients=loop_clients)

    async def hit_each_twice() -> list[float | None]:
        try:
            return await asyncio.gather(*(limiter.hit_async(b) for b in buckets * 2))
        finally:
            await loop_clients.close()

    try:
        waits = asyncio.run(hit_each_twice())
        assert waits[: len(buckets)] == [None] * len(buckets)
        assert all(w is not None for w in waits[len(buckets) :])
        assert [int(redis_client.get(prefix + b) or 0) for b in buckets] == [2] * len(buckets)
    finally:
        redis_client.delete(*(prefix + b for b in buckets))
