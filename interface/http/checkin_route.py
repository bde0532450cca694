"""POST /v1/check-ins answered straight from ASGI, in front of litestar.

The check-in is the hot path. Under the benchmark's load, litestar's machinery around it cost
about as much CPU as the check-in itself: routing, the exception and observability middleware,
the `Request` object, the handler's signature model and the response object. This route keeps
everything the check-in promises and nothing else. It runs the same `answer_check_in` as the
litestar handler, so it has the same rate limit, token check and strict body, and it turns
errors into the same problem answers (`problem_for`). Its request is counted and timed in the
metrics under the same route template. The body limit is the app's, and so is the answer to an
over-long body (413). Every other request, including another method on this path, goes to
litestar, which also documents this route.
"""

from __future__ import annotations

from time import perf_counter

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from infrastructure.ops.metrics import Metrics
from interface.http.problems import problem_for
from interface.http.visitors import CHECK_IN_PATH, answer_check_in

JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGoneError(Exception):
    """The client went away before its request had been read whole."""


class CheckInRoute:
    """An ASGI app: check-ins answered here, anything else by the litestar app behind."""

    def __init__(self, app: Litestar, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["path"] != CHECK_IN_PATH
            or scope["method"] != "POST"
        ):
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        try:
            content = await self._answer(scope, receive)
            status, headers = 201, JSON_HEADERS
        except ClientGoneError:  # nobody to answer, nothing done
            return
        except Exception as exc:
            status, headers, content = _problem(exc)
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(content)).encode())],
        }
        end: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": content,
            "more_body": False,
        }
        try:
            await send(start)
            await send(end)
        finally:
            metrics: Metrics | None = self.app.state.get("metrics")
            if metrics is not None:
                metrics.observe_request("POST", CHECK_IN_PATH, status, perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive) -> bytes:
        authorization = idempotency = None
        forwarded: list[str] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = authorization or value.decode("latin-1")
            elif name == b"idempotency-key":
                idempotency = idempotency or value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                raise RequestEntityTooLarge
        body = await self._body(receive)
        client = scope.get("client")
        return await answer_check_in(
            self.app.state,
            peer=client[0] if client else "",
            forwarded=",".join(forwarded) or None,
            authorization=authorization,
            idempotency=idempotency,
            body=body,
        )

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGoneError
            chunk = message["body"]
            size += len(chunk)
            if size > self.max_body_bytes:
                raise RequestEntityTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _problem(exc: Exception) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """What `problem_for` answers, as ASGI status, headers and body."""
    response = problem_for(exc, CHECK_IN_PATH)
    headers = [(b"content-type", (response.media_type or "application/json").encode())]
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers.items()]
    content = response.content
    assert isinstance(content, bytes)
    assert response.status_code is not None
    return response.status_code, headers, content
