"""Redis clients for the event loop: one asyncio client per loop, made when first asked for.

An asyncio connection belongs to the loop that opened it. A worker has one loop, but the
composition root is built before it runs, and tests drive one app from several loops; so each
loop gets its own client, and the clients of loops that are gone are dropped with them.
"""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio


class LoopClients:
    """Hands out the asyncio Redis client of the running event loop."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> redis.asyncio.Redis:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(self._url)
            self._clients[loop] = client
        return client

    async def close(self) -> None:
        """Close the running loop's client (the others close with their loops)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
