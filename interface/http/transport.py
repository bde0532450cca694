"""uvicorn's HTTP protocol, with each answer sent to the socket in one write.

uvicorn writes an answer's status line and headers when the app starts the response, and its
body when the app sends it: two `send` calls on the socket, two TCP segments. On loopback, and
behind a proxy on the same host, the kernel delivers each segment in the sender's system call,
so the second write costs almost as much CPU as the first. Under the benchmark's load, those
writes were the largest single item of a worker's CPU. Here the writes made in one turn of the
event loop are joined and handed to the socket together at the end of that turn. Closing
flushes first, and an aborted connection drops what is pending, as the transport itself would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes within one loop turn reach the socket as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue data; the first write of a loop turn schedules the flush."""
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Send what is queued, unless the connection is going away."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        """Send what is queued, then close (the transport still drains its own buffer)."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Close at once; what is queued is dropped."""
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a coalescing transport (`uvicorn.run(http=...)`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Hand uvicorn the coalescing transport instead of the socket's own."""
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(coalescing)  # type: ignore[arg-type]
