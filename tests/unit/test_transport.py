"""The coalescing transport: one socket write per loop turn, nothing lost or sent after close."""

from __future__ import annotations

import asyncio
from typing import Any

from interface.http.transport import CoalescingTransport


class Socket:
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name)


def run(body: Any) -> Socket:
    async def main() -> Socket:
        socket = Socket()
        await body(CoalescingTransport(socket, asyncio.get_running_loop()), socket)  # type: ignore[arg-type]
        return socket

    return asyncio.run(main())


def test_the_writes_of_one_loop_turn_reach_the_socket_as_one() -> None:
    async def answer(transport: CoalescingTransport, socket: Socket) -> None:
        transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
        transport.write(b'{"visit_id": "v"}')
        assert socket.calls == []  # nothing sent before the turn ends
        await asyncio.sleep(0)
        transport.write(b"next")
        await asyncio.sleep(0)

    socket = run(answer)

    assert socket.calls == [
        ("write", b'HTTP/1.1 201 Created\r\n\r\n{"visit_id": "v"}'),
        ("write", b"next"),
    ]


def test_closing_sends_what_is_queued_first() -> None:
    async def answer(transport: CoalescingTransport, _: Socket) -> None:
        transport.write(b"last answer")
        transport.close()
        await asyncio.sleep(0)

    assert run(answer).calls == [("write", b"last answer"), ("close", None)]


def test_an_aborted_or_closing_connection_gets_nothing_more() -> None:
    async def aborted(transport: CoalescingTransport, _: Socket) -> None:
        transport.write(b"dropped")
        transport.abort()
        await asyncio.sleep(0)

    async def gone(transport: CoalescingTransport, socket: Socket) -> None:
        transport.write(b"dropped")
        socket.closing = True  # the peer went away during the turn
        await asyncio.sleep(0)

    assert run(aborted).calls == [("abort", None)]
    assert run(gone).calls == []


def test_everything_else_is_the_socket_transport_s() -> None:
    async def ask(transport: CoalescingTransport, _: Socket) -> None:
        assert transport.get_extra_info("peername") == ("127.0.0.1", 5000)
        assert transport.is_closing() is False

    run(ask)
