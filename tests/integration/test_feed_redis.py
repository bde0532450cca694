"""The Redis feed and projection calls: resubscribing drops caches, every move is announced."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

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


def agency_registered() -> Any:
    (registered,) = Agency(id=uuid.uuid4(), name="CDC", jurisdiction=["110105"]).collect_events()
    return registered


def test_a_chained_batch_waits_for_its_predecessor_then_moves_the_position_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    projector = RedisProjector(redis_client, redis_prefix, 180)
    assert projector.apply_batch([(9, agency_registered())]) == 1
    batch = projector.encode([(n, agency_registered()) for n in (11, 12, 13)], chained=True)

    assert projector.apply_encoded(batch, after=10) == -1  # event 10 is not applied yet
    assert projector.position() == 9
    assert projector.apply_batch([(10, agency_registered())]) == 1
    assert projector.apply_encoded(batch, after=10) == 3  # the same encoding, tried again
    assert projector.position() == 13
    assert projector.apply_encoded(batch, after=10) == 0  # never twice


def test_the_apply_script_is_loaded_again_when_redis_forgot_it(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    projector = RedisProjector(redis_client, redis_prefix, 180)
    redis_client.script_flush()

    assert projector.apply_batch([(1, agency_registered())]) == 1
    assert projector.position() == 1
