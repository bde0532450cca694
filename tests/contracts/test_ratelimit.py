"""One contract for the rate limiters: the memory limiter and the Redis limiter count alike."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import redis

from infrastructure.ops.ratelimit import Limiter, MemoryRateLimiter, RateLimiter
from tests.integration.conftest import redis_of


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Limiters:
    """Limiters of one adapter that share their counts (as the workers of one deployment do)."""

    make: Callable[[int], Limiter]
    # Each thread's own limiter (a Redis client is not shared between threads).
    per_thread: Callable[[Limiter], Limiter]
    # What the adapter counted in a bucket, where it keeps counts one can read.
    counted: Callable[[str], int | None] = field(default=lambda _bucket: None)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def limiters(request: pytest.FixtureRequest) -> Iterator[Limiters]:
    if request.param == "memory":
        yield Limiters(
            make=lambda per_minute: MemoryRateLimiter(per_minute, clock=FakeClock()),
            per_thread=lambda limiter: limiter,
        )
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix: str = request.getfixturevalue("redis_prefix")
    opened: list[redis.Redis] = []

    def per_thread(limiter: Limiter) -> Limiter:
        connection = redis_of()
        opened.append(connection)
        return RateLimiter(connection, limiter.per_minute, prefix=prefix)

    yield Limiters(
        make=lambda per_minute: RateLimiter(client, per_minute, prefix=prefix),
        per_thread=per_thread,
        counted=lambda bucket: int(client.get(prefix + bucket) or 0),
    )
    for connection in opened:
        connection.close()


def test_hits_up_to_the_limit_are_allowed(limiters: Limiters) -> None:
    limiter = limiters.make(3)

    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]


def test_the_hit_past_the_limit_waits_at_most_a_minute(limiters: Limiters) -> None:
    limiter = limiters.make(2)
    limiter.hit("a")
    limiter.hit("a")

    wait = limiter.hit("a")

    assert wait is not None
    assert 0 < wait <= 60


def test_buckets_are_counted_apart(limiters: Limiters) -> None:
    limiter = limiters.make(1)
    limiter.hit("a")

    assert limiter.hit("b") is None


def test_exactly_the_limit_is_allowed_under_concurrent_hits(limiters: Limiters) -> None:
    per_minute = 137
    shared = limiters.make(per_minute)
    allowed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def hammer() -> None:
        limiter = limiters.per_thread(shared)
        start.wait()
        mine = sum(limiter.hit("shared") is None for _ in range(50))
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(allowed) == per_minute
    assert limiters.counted("shared") in (None, 8 * 50)
