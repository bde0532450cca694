"""One Redis or a Redis Cluster, behind the same client API (ADR 0012).

On a cluster every script call and transaction must touch keys of one hash slot. The read
models' keys all carry one hash tag per deployment: `apply.lua` applies a batch of events of
many people and venues behind one position, atomically, which a single slot keeps possible.
The other families (rate limits, sessions, idempotency answers, metrics) are one key per call
and spread over the cluster by their own names.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.crc import key_slot

_TAG = re.compile(r"\{[^{}]+\}")


def one_slot(prefix: str) -> str:
    """The read models' prefix: `prefix` if it already holds a hash tag, else `prefix` with one
    made of it (`fx:` gives `fx:{fx}:`), so that all their keys hash to one slot."""
    if _TAG.search(prefix):
        return prefix
    return f"{prefix}{{{prefix.rstrip(':') or 'fx'}}}:"


def open_client(url: str, cluster: bool) -> redis.Redis:
    """A client of the Redis at `url`, or of the cluster `url` names one node of.

    The cluster client answers the same commands; it is typed as `redis.Redis` so that the
    adapters take either.
    """
    if cluster:
        return cast(redis.Redis, redis.cluster.RedisCluster.from_url(url))
    return redis.Redis.from_url(url)


def close_client(client: redis.Redis) -> None:
    """Close a client of either kind, its sockets included.

    A cluster client's `close` leaves its nodes' connection pools open (they were handed to
    the nodes' clients, which do not own them), so their sockets are disconnected here.
    """
    if isinstance(client, redis.cluster.RedisCluster):
        client.disconnect_connection_pools()
    client.close()


def open_loop_client(url: str, cluster: bool) -> redis.asyncio.Redis:
    """`open_client` for an event loop."""
    if cluster:
        return cast(redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster.from_url(url))
    return redis.asyncio.Redis.from_url(url)


def by_slot(keys: list[str]) -> list[list[int]]:
    """The positions of `keys` grouped by hash slot, in order of first appearance."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key_slot(key.encode())].append(i)
    return list(groups.values())
