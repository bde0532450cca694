"""The bare check-in route answers exactly as litestar's handler would, and keeps its limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from infrastructure.services import Services
from infrastructure.settings import Settings
from interface.http.app import create_app
from interface.http.checkin_route import CheckInRoute
from tests.conftest import ADMIN_TOKEN, World, bearer
from tests.http.test_bad_input import assert_problem


@pytest.fixture
def route(settings: Settings, services: Services) -> CheckInRoute:
    return create_app(settings, services=services)


@pytest.fixture
def both(route: CheckInRoute) -> Iterator[tuple[World, TestClient[Any]]]:
    """A world acting through the bare route, and a client of the litestar app behind it.

    Only the first client runs the lifespan; the second shares its app state (the services)
    and its event loop, whose Redis clients the lifespan closes.
    """
    with TestClient(route) as through_route:
        through_litestar = TestClient(route.app)
        through_litestar.blocking_portal = through_route.blocking_portal
        yield World(through_route), through_litestar


Request = Callable[[World], tuple[dict[str, Any], dict[str, str]]]


def _fresh(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    venue = world.venue(world.merchant())
    return {"code": venue["code"]}, bearer(world.visitor()["token"])


def _no_token(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    body, _ = _fresh(world)
    return body, {}


def _merchant_token(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    body, _ = _fresh(world)
    return body, bearer(world.merchant()["token"])


def _forged_code(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    _, headers = _fresh(world)
    return {"code": "x" * 36}, headers


def _unknown_field(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    body, headers = _fresh(world)
    return {**body, "visitor_id": "someone-else"}, headers


def _wrong_type(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    _, headers = _fresh(world)
    return {"code": 9}, headers


def _long_key(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    body, headers = _fresh(world)
    return body, {**headers, "Idempotency-Key": "k" * 201}


def _unknown_dependent(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    body, headers = _fresh(world)
    return {**body, "party": ["nobody"]}, headers


@pytest.mark.parametrize(
    "make",
    [
        _fresh,
        _no_token,
        _merchant_token,
        _forged_code,
        _unknown_field,
        _wrong_type,
        _long_key,
        _unknown_dependent,
    ],
)
def test_the_bare_route_answers_as_the_litestar_handler_does(
    both: tuple[World, TestClient[Any]], make: Request
) -> None:
    world, litestar = both
    answers = []
    for client in (world.client, litestar):
        body, headers = make(world)
        answers.append(client.post("/v1/check-ins", json=body, headers=headers))
    bare, handler = answers

    assert bare.status_code == handler.status_code
    for header in ("content-type", "www-authenticate", "retry-after"):
        assert bare.headers.get(header) == handler.headers.get(header)
    if bare.status_code == 201:
        assert bare.json().keys() == handler.json().keys()
        assert bare.json()["visit_id"] != handler.json()["visit_id"]
    else:
        assert bare.json() == handler.json()


def test_an_oversized_check_in_is_refused_before_anything_is_stored(
    world: World, settings: Settings
) -> None:
    body, headers = _fresh(world)
    padded = b'{"code": "' + body["code"].encode() + b'", "party": [' + b'"a",' * 50_000 + b'"a"]}'
    assert len(padded) > settings.max_body_bytes

    response = world.client.post(
        "/v1/check-ins", content=padded, headers={**headers, "content-type": "application/json"}
    )

    assert_problem(response, 413, "body-too-large")


def test_check_ins_are_counted_under_their_route_template(world: World) -> None:
    body, headers = _fresh(world)
    world.client.post("/v1/check-ins", json=body, headers=headers)
    world.client.post("/v1/check-ins", json=body)

    text = world.client.get("/metrics", headers=bearer(ADMIN_TOKEN)).text

    counted = 'fangxin_http_requests_total{method="POST",route="/v1/check-ins",status="%d"} 1'
    assert counted % 201 in text.splitlines()
    assert counted % 401 in text.splitlines()


def test_a_check_in_over_its_rate_limit_is_refused_and_changes_nothing(
    settings: Settings, services: Services
) -> None:
    limited = msgspec.structs.replace(settings, rate_limit=3)
    with TestClient(create_app(limited, services=services)) as client:
        world = World(client)
        venue, visitor = world.venue(world.merchant()), world.visitor()
        for _ in range(3):
            world.check_in(visitor, venue)

        refused = client.post(
            "/v1/check-ins", json={"code": venue["code"]}, headers=bearer(visitor["token"])
        )

        assert_problem(refused, 429, "rate-limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert len(world.visits(visitor)) == 3


def test_other_methods_on_the_check_in_path_are_litestar_s(world: World) -> None:
    response = world.client.get("/v1/check-ins")

    assert_problem(response, 405)


class Exchange:
    """A hand-driven ASGI exchange: the request body in chunks, the messages sent back."""

    def __init__(self, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> None:
        self.scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": "/v1/check-ins",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
        }
        self.incoming: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return self.incoming.pop(0) if self.incoming else {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


@pytest.mark.anyio
async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(
    settings: Settings,
) -> None:
    route = create_app(settings)
    chunk = b" " * 4096
    exchange = Exchange([chunk] * (settings.max_body_bytes // len(chunk) + 2), [])

    await route(exchange.scope, exchange.receive, exchange.send)  # type: ignore[arg-type]

    start, body = exchange.sent
    assert start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert (b"content-length", str(len(body["body"])).encode()) in start["headers"]
    assert exchange.incoming, "the rest of the body was not read"


@pytest.mark.anyio
async def test_a_client_gone_before_its_body_ends_gets_no_answer(settings: Settings) -> None:
    route = create_app(settings)
    exchange = Exchange([b'{"code": '], [(b"authorization", b"Bearer x")])
    exchange.incoming[0]["more_body"] = True

    await route(exchange.scope, exchange.receive, exchange.send)  # type: ignore[arg-type]

    assert exchange.sent == []
