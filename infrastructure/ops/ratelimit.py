"""Request rate limits: fixed one-minute windows per bucket, in Redis or in process memory.

A window opens at a bucket's first hit and lasts a minute; the hits inside it are counted,
and past `per_minute` the caller is told how long until the window closes. Limits of 0 turn
limiting off without touching any store (benchmarks run that way).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Protocol

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.readmodels.redis.cluster import by_slot
from infrastructure.readmodels.redis.loop import Gathered, LoopClients

log = logging.getLogger("fangxin.ratelimit")

KEY_PREFIX = "fangxin:rl:"
WINDOW_SECONDS = 60.0
_WINDOW_MS = int(WINDOW_SECONDS * 1000)

# For each bucket (KEYS), INCR and the expiry in one step: two separate commands would let a
# crash between them leave a counter that never expires, and a read-then-write would race
# across workers.
_HIT_MANY = (resources.files("infrastructure.ops") / "hit_many.lua").read_text()


# Redis names scripts by their SHA-1 (an identifier, not a security measure).
_HIT_MANY_SHA = hashlib.sha1(_HIT_MANY.encode(), usedforsecurity=False).hexdigest()


class Limiter(Protocol):
    """Counts hits per bucket; says how long to wait once a bucket is over its limit."""

    @property
    def per_minute(self) -> int:
        """Hits allowed per bucket and window; 0 means no limit."""
        ...

    def hit(self, bucket: str) -> float | None:
        """Count one hit: None when allowed, else the seconds until the window ends."""
        ...

    async def hit_async(self, bucket: str) -> float | None:
        """`hit`, awaited on the event loop."""
        ...


class RateLimiter:
    """Limits shared by every worker: one Redis counter per bucket and window, kept atomically."""

    def __init__(
        self,
        client: redis.Redis,
        per_minute: int,
        *,
        prefix: str = KEY_PREFIX,
        loop_clients: LoopClients | None = None,
    ) -> None:
        self._per_minute = max(per_minute, 0)
        self._prefix = prefix
        self._script = client.register_script(_HIT_MANY)
        self._loop_clients = loop_clients
        # Concurrent hits of this worker's event loop share one round trip.
        self._hits: Gathered[str, tuple[int, int]] = Gathered(self._hit_all)

    @property
    def per_minute(self) -> int:
        """Hits allowed per bucket and minute; 0 means no limit."""
        return self._per_minute

    def hit(self, bucket: str) -> float | None:
        """Count one hit: None when allowed, else the seconds until the window ends."""
        if self._per_minute == 0:
            return None
        try:
            count, ttl_ms = self._script(keys=[self._prefix + bucket], args=[_WINDOW_MS])[:2]
        except (RedisConnectionError, RedisTimeoutError) as error:
            # Fail open: a Redis outage must not stop check-ins, whose record is the event
            # store; the limit is abuse protection, not an invariant.
            log.warning("rate limiter unavailable", extra={"error": type(error).__name__})
            return None
        return self._verdict(int(count), int(ttl_ms))

    async def hit_async(self, bucket: str) -> float | None:
        """`hit` on the event loop: no thread, one round trip shared with concurrent hits."""
        if self._per_minute == 0:
            return None
        if self._loop_clients is None:
            return await asyncio.to_thread(self.hit, bucket)
        try:
            count, ttl_ms = await self._hits.ask(self._prefix + bucket)
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("rate limiter unavailable", extra={"error": type(error).__name__})
            return None
        return self._verdict(count, ttl_ms)

    async def _hit_all(self, keys: list[str]) -> list[tuple[int, int]]:
        assert self._loop_clients is not None
        if not self._loop_clients.cluster:
            return await self._hit_slot(keys)
        # On a cluster one call holds the buckets of one slot. The slots go one after another:
        # redis-py's asyncio cluster client, opening connections concurrently, can send a
        # command twice, and INCR is not idempotent (ADR 0012).
        answers: list[tuple[int, int]] = [(0, 0)] * len(keys)
        for group in by_slot(keys):
            counts = await self._hit_slot([keys[i] for i in group])
            for i, count in zip(group, counts, strict=True):
                answers[i] = count
        return answers

    async def _hit_slot(self, keys: list[str]) -> list[tuple[int, int]]:
        assert self._loop_clients is not None
        client = self._loop_clients.client()
        try:
            flat = await client.evalsha(_HIT_MANY_SHA, len(keys), *keys, _WINDOW_MS)
        except NoScriptError:  # a restarted Redis: send it the script itself
            flat = await client.eval(_HIT_MANY, len(keys), *keys, _WINDOW_MS)
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    def _verdict(self, count: int, ttl_ms: int) -> float | None:
        if count <= self._per_minute:
            return None
        return max(ttl_ms, 1) / 1000


class MemoryRateLimiter:
    """Limits for one process (the embedded deployment): a dict of windows under a lock."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = max(per_minute, 0)
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}
        self._next_sweep = 0.0

    @property
    def per_minute(self) -> int:
        """Hits allowed per bucket and minute; 0 means no limit."""
        return self._per_minute

    def hit(self, bucket: str) -> float | None:
        """Count one hit: None when allowed, else the seconds until the window ends."""
        if self._per_minute == 0:
            return None
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            ends, count = self._windows.get(bucket, (0.0, 0))
            if now >= ends:
                ends, count = now + WINDOW_SECONDS, 0
            count += 1
            self._windows[bucket] = (ends, count)
        return None if count <= self._per_minute else ends - now

    async def hit_async(self, bucket: str) -> float | None:
        """`hit`: a dictionary update, nothing to await."""
        return self.hit(bucket)

    def _sweep(self, now: float) -> None:
        # Once a window: forget closed windows, so memory follows the clients of one minute.
        self._windows = {b: w for b, w in self._windows.items() if w[0] > now}
        self._next_sweep = now + WINDOW_SECONDS


def build_limiter(
    per_minute: int,
    client: redis.Redis | None,
    *,
    prefix: str = KEY_PREFIX,
    loop_clients: LoopClients | None = None,
) -> Limiter:
    """The Redis limiter when a client is given, else the in-process one."""
    if client is None:
        return MemoryRateLimiter(per_minute)
    return RateLimiter(client, per_minute, prefix=prefix, loop_clients=loop_clients)
