"""The Redis feed and projection calls: resubscribing drops caches, every move is announced."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import redis
import redis.cluster

from domain.people import Agency
from infrastructure.readmodels.redis.feed import RedisFeed
from infrastructure.readmodels.redis.projection import RedisProjector
from tests.integration.conftest import records_of


def wait_until(test: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(test) and test():
            return True
        time.sleep(0.05)
    return False


def kill_subscribers(client: redis.Redis) -> int:
    """Drop every pub/sub connection (on a cluster, on each node)."""
    if isinstance(client, redis.cluster.RedisCluster):
        killed = client.client_kill_filter(_type="pubsub", target_nodes="all")
        return sum(killed.values()) if isinstance(killed, dict) else int(killed)
    return int(client.client_kill_filter(_type="pubsub"))


def test_the_feed_tells_its_listeners_each_time_it_subscribes_again(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    feed = RedisFeed(redis_client, records_of(redis_prefix))
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
        assert wait_until(lambda: kill_subscribers(redis_client) > 0)
        assert subscribed.acquire(timeout=10)
        assert count[0] >= 2
    finally:
        feed.stop()


def test_each_projection_call_that_moves_the_position_announces_it(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    feed = RedisFeed(redis_client, records_of(redis_prefix))
    subscribed = threading.Event()
    positions: list[int] = []
    feed.on_subscribed(subscribed.set)
    feed.on_position(positions.append)
    feed.start()
    projector = RedisProjector(redis_client, records_of(redis_prefix), 180)
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


def test_a_chained_batch_is_parked_until_its_predecessor_comes_then_applied_with_it_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    projector = RedisProjector(redis_client, records_of(redis_prefix), 180)
    assert projector.apply_batch([(9, agency_registered())]) == 1
    batch = projector.encode([(n, agency_registered()) for n in (11, 12, 13)], chained=True)

    assert projector.apply_encoded(batch, after=10) == -1  # event 10 is not applied yet
    assert projector.position() == 9
    assert redis_client.hlen(redis_prefix + "parked") == 1
    # The call that applies event 10 applies the parked batch too.
    assert projector.apply_batch([(10, agency_registered())]) == 1
    assert projector.position() == 13
    assert redis_client.hlen(redis_prefix + "parked") == 0
    assert projector.apply_encoded(batch, after=10) == 0  # never twice
    assert projector.position() == 13


def test_a_parked_batch_sent_again_past_a_gap_is_applied_once_and_unparked(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    projector = RedisProjector(redis_client, records_of(redis_prefix), 180)
    assert projector.apply_batch([(9, agency_registered())]) == 1
    batch = projector.encode([(n, agency_registered()) for n in (11, 12)], chained=True)
    assert projector.apply_encoded(batch, after=10) == -1
    # Id 10 was taken by a transaction that rolled back: its writer checked the log and sends
    # the batch again, chained to the position before the gap.
    assert projector.apply_encoded(batch, after=9) == 2
    assert projector.position() == 12
    assert redis_client.hlen(redis_prefix + "parked") == 0
    assert projector.apply_batch([(13, agency_registered())]) == 1


def test_batches_of_several_calls_park_and_drain_in_log_order(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infrastructure.readmodels.redis import projection as redis_projection

    monkeypatch.setattr(redis_projection, "EVENTS_PER_CALL", 2)
    projector = RedisProjector(redis_client, records_of(redis_prefix), 180)
    positions: list[int] = []
    pubsub = redis_client.pubsub()
    pubsub.subscribe(redis_prefix + "pos")
    later = projector.encode([(n, agency_registered()) for n in range(6, 11)], chained=True)
    middle = projector.encode([(n, agency_registered()) for n in (3, 4, 5)], chained=True)
    first = projector.encode([(n, agency_registered()) for n in (1, 2)], chained=True)
    assert len(later.calls) == 3
    assert projector.apply_encoded(later, after=5) == -1
    assert projector.apply_encoded(middle, after=2) == -1
    assert projector.position() == 0
    assert projector.apply_encoded(first, after=0) == 2
    assert projector.position() == 10
    assert redis_client.hlen(redis_prefix + "parked") == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and 10 not in positions:
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "message":
            positions.append(int(message["data"]))
    pubsub.close()
    assert positions == [10]  # the one call that moved it all announced it once


def test_the_apply_script_is_loaded_again_when_redis_forgot_it(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    projector = RedisProjector(redis_client, records_of(redis_prefix), 180)
    redis_client.script_flush()

    assert projector.apply_batch([(1, agency_registered())]) == 1
    assert projector.position() == 1
