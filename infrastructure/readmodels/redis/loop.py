"""Redis for the event loop: one asyncio client per loop, and queries that share round trips.

An asyncio connection belongs to the loop that opened it. A worker has one loop, but the
composition root is built before it runs, and tests drive one app from several loops; so each
loop gets its own client, and the clients of loops that are gone are dropped with them.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import redis.asyncio

from infrastructure.readmodels.redis.cluster import open_loop_client

Q = TypeVar("Q")
A = TypeVar("A")


class LoopClients:
    """Hands out the asyncio Redis client of the running event loop."""

    def __init__(self, url: str, cluster: bool = False) -> None:
        self._url = url
        self.cluster = cluster
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> redis.asyncio.Redis:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = open_loop_client(self._url, self.cluster)
            self._clients[loop] = client
        return client

    async def close(self) -> None:
        """Close the running loop's client (the others close with their loops)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


class _Gathering(Generic[Q, A]):
    """One event loop's queries waiting for the next round trip."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Q, asyncio.Future[A]]] = []
        # The task sending the queries, while one runs (the loop itself keeps only a weak
        # reference to it).
        self.task: asyncio.Task[None] | None = None


class Gathered(Generic[Q, A]):
    """Concurrent queries on one event loop share one round trip.

    The first query goes at once; those that arrive while it is in flight go together in the
    next one. No timer: an idle loop pays no delay, a busy one pays one round trip per group.
    """

    def __init__(self, send: Callable[[list[Q]], Awaitable[list[A]]]) -> None:
        self._send = send
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gathering[Q, A]] = (
            weakref.WeakKeyDictionary()
        )

    async def ask(self, query: Q) -> A:
        """The answer to one query, sent with whatever else is asked meanwhile."""
        loop = asyncio.get_running_loop()
        gathering = self._loops.get(loop)
        if gathering is None:
            gathering = self._loops[loop] = _Gathering()
        future: asyncio.Future[A] = loop.create_future()
        gathering.waiting.append((query, future))
        if gathering.task is None or gathering.task.done():
            gathering.task = loop.create_task(self._send_all(gathering))
        return await future

    async def _send_all(self, gathering: _Gathering[Q, A]) -> None:
        # Runs until nothing waits; between that check and the task's end nothing else runs on
        # the loop, so a query asked later always finds the task done and starts another.
        while gathering.waiting:
            group, gathering.waiting = gathering.waiting, []
            try:
                answers = await self._send([query for query, _ in group])
            except Exception as exc:  # every query of the group hears its own failure
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(group, answers, strict=True):
                if not future.done():  # cancelled: its client went away
                    future.set_result(answer)
