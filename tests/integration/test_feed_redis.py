"""A worker whose subscription dropped may have missed an erasure: it forgets its caches."""

from __future__ import annotations

import threading
import time
import uuid

import redis

from domain.people import Agency
from infrastructure.readmodels.redis_extras import RedisFeed
from infrastructure.readmodels.redis_projection import RedisProjector


def wait_until(test: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(test) and test():
            return True
        time.sleep(0.05)
    return False


def test_the_feed_tells_its_listeners_each_time_it_subscribes_again(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    feed = RedisFeed(redis_client, redis_prefix)
    subscribed = threading.Semaphore(0)
    count = [0]

    def note() -> None:
        count[0] += 1
        subscribed.release()

    feed.on_subscribed(note)
    feed.start()
    try:
        assert subscribed.acquire(timeout=10)
        assert count[0] == 1
        # Drop the subscription as a network failure or an overflowing output buffer would.
        assert wait_until(lambda: redis_client.client_kill_filter(_type="pubsub") > 0)
        assert subscribed.acquire(timeout=10)
        assert count[0] >= 2
    finally:
        feed.stop()


def test_each_projection_call_that_moves_the_position_announces_it(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    feed = RedisFeed(redis_client, redis_prefix)
    subscribed = threading.Event()
    positions: list[int] = []
    feed.on_subscribed(subscribed.set)
    feed.on_position(positions.append)
    feed.start()
    projector = RedisProjector(redis_client, redis_prefix, 180)
    (registered,) = Agency(id=uuid.uuid4(), name="CDC", jurisdiction=["110105"]).collect_events()
    try:
        assert subscribed.wait(timeout=10)
        assert projector.apply_batch([(7, registered)]) == 1
        assert projector.apply_batch([(7, registered)]) == 0  # moves nothing
        assert wait_until(lambda: positions == [7])
        time.sleep(0.2)  # a second announcement would have arrived by now
        assert positions == [7]
    finally:
        feed.stop()
