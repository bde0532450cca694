"""Console sessions: a token exchanged for an HttpOnly cookie, CSRF, idle timeout, sign-out."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest
from litestar.testing import TestClient

from infrastructure.services import Services
from interface.http.sessions import COOKIE, MemoryBackend, Sessions
from tests.conftest import ADMIN_TOKEN, MovableClock, World, bearer


@pytest.fixture
def world(client: TestClient[Any]) -> World:
    return World(client)


class Console:
    """A browser's side of a session: the cookie's value and the CSRF token."""

    def __init__(self, client: TestClient[Any], token: str) -> None:
        self.client = client
        signed = client.post("/v1/sessions", json={"token": token})
        assert signed.status_code == 201, signed.text
        self.answer = signed.json()
        self.set_cookie = signed.headers["set-cookie"]
        self.session_id = SimpleCookie(self.set_cookie)[COOKIE].value
        client.cookies.clear()

    def request(self, method: str, path: str, csrf: str | None = None, **kw: Any) -> Any:
        headers = {"Cookie": f"{COOKIE}={self.session_id}", **kw.pop("headers", {})}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        return self.client.request(method, path, headers=headers, **kw)

    @property
    def csrf(self) -> str:
        token: str = self.answer["csrf_token"]
        return token


def new_venue_body() -> dict[str, Any]:
    return {"name": "Noodles", "address": "1 Road", "region": "110105", "category": "restaurant"}


def test_signing_in_sets_an_httponly_strict_secure_cookie_that_reads_the_api(
    world: World,
) -> None:
    # Given a merchant with a venue.
    merchant = world.merchant()
    world.venue(merchant)
    # When they exchange the token for a session.
    console = Console(world.client, merchant["token"])
    # Then the cookie is HttpOnly, SameSite=Strict, Secure (the service is on https), site-wide.
    flags = {part.strip().lower() for part in console.set_cookie.split(";")}
    assert {"httponly", "samesite=strict", "secure", "path=/"} <= flags
    assert console.answer["role"] == "merchant"
    assert console.answer["principal_id"] == merchant["merchant_id"]
    # And the cookie alone reads the merchant's venues and their poster.
    venues = console.request("GET", "/v1/venues")
    assert venues.status_code == 200, venues.text
    venue_id = venues.json()["venues"][0]["venue_id"]
    poster = console.request("GET", f"/v1/venues/{venue_id}/poster.svg")
    assert poster.status_code == 200
    assert poster.headers["content-type"].startswith("image/svg+xml")
    # And the session is stored under a keyed hash only: the id itself is nowhere.
    assert console.session_id not in console.request("GET", "/v1/sessions/current").text


def test_an_unsafe_request_with_the_cookie_needs_the_csrf_token(world: World) -> None:
    console = Console(world.client, world.merchant()["token"])
    # When an unsafe request comes with the cookie but without, or with a wrong, CSRF token.
    missing = console.request("POST", "/v1/venues", json=new_venue_body())
    wrong = console.request("POST", "/v1/venues", csrf="x" * 43, json=new_venue_body())
    # Then it is refused and nothing is made.
    assert missing.status_code == 403, missing.text
    assert wrong.status_code == 403, wrong.text
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert console.request("GET", "/v1/venues").json()["venues"] == []
    # And with the token it is done.
    made = console.request("POST", "/v1/venues", csrf=console.csrf, json=new_venue_body())
    assert made.status_code == 201, made.text


def test_an_idle_session_ends_and_a_used_one_lives_on(world: World, clock: MovableClock) -> None:
    console = Console(world.client, world.merchant()["token"])
    # A session used every 20 minutes stays signed in past the 30-minute idle limit.
    for _ in range(3):
        clock.advance(timedelta(minutes=20))
        assert console.request("GET", "/v1/venues").status_code == 200
    # But after 31 idle minutes it is over, for good.
    clock.advance(timedelta(minutes=31))
    assert console.request("GET", "/v1/venues").status_code == 401
    clock.advance(timedelta(minutes=-30))
    assert console.request("GET", "/v1/venues").status_code == 401


def test_signing_out_ends_the_session_and_clears_the_cookie(world: World) -> None:
    console = Console(world.client, world.merchant()["token"])
    # Sign-out is itself protected by the CSRF token.
    assert console.request("DELETE", "/v1/sessions/current").status_code == 403
    out = console.request("DELETE", "/v1/sessions/current", csrf=console.csrf)
    assert out.status_code == 204, out.text
    assert "max-age=0" in out.headers["set-cookie"].lower()
    # The old cookie, replayed, no longer works.
    assert console.request("GET", "/v1/venues").status_code == 401
    assert console.request("GET", "/v1/sessions/current").status_code == 401


def test_a_token_that_stops_working_ends_its_sessions(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    auditor = world.auditor()
    console = Console(world.client, auditor["token"])
    assert console.request("GET", "/v1/audit").status_code == 200
    # When the token stops working (rotated or its account deleted), so does the session.
    monkeypatch.setattr(services.directory, "principal", lambda token_hash: None)
    assert console.request("GET", "/v1/audit").status_code == 401
    monkeypatch.undo()
    assert console.request("GET", "/v1/audit").status_code == 401


@pytest.mark.parametrize(
    ("who", "status"),
    [("unknown", 401), ("visitor", 403)],
)
def test_only_console_roles_sign_in(world: World, who: str, status: int) -> None:
    token = {"unknown": "not-a-token", "visitor": world.visitor()["token"]}[who]
    answer = world.client.post("/v1/sessions", json={"token": token})
    assert answer.status_code == status, answer.text
    assert "set-cookie" not in answer.headers


def test_the_admin_signs_in_manages_accounts_and_reads_no_case_data(world: World) -> None:
    console = Console(world.client, ADMIN_TOKEN)
    assert console.answer["role"] == "admin"
    # The session stands for the admin token, found by its hash alone.
    assert console.request("GET", "/v1/agencies").status_code == 200
    made = console.request("POST", "/v1/auditors", csrf=console.csrf, json={"name": "A"})
    assert made.status_code == 201, made.text
    # Unsafe requests need the CSRF token; case data stay closed to the admin.
    refused = console.request("POST", "/v1/auditors", json={"name": "B"})
    assert refused.status_code == 403
    assert console.request("GET", "/v1/cases").status_code == 403
    assert console.request("GET", "/v1/audit").status_code == 403


def test_a_replaced_admin_token_ends_the_admin_sessions(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    console = Console(world.client, ADMIN_TOKEN)
    assert console.request("GET", "/v1/agencies").status_code == 200
    # `fangxin admin token` makes a new one: the hash kept by the session no longer matches.
    monkeypatch.setattr(services.admin, "_configured", "0" * 64)
    assert console.request("GET", "/v1/agencies").status_code == 401
    monkeypatch.undo()
    assert console.request("GET", "/v1/agencies").status_code == 401


def test_a_sign_in_from_another_site_is_refused(world: World) -> None:
    answer = world.client.post(
        "/v1/sessions",
        json={"token": world.merchant()["token"]},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status_code == 403, answer.text
    assert "set-cookie" not in answer.headers


def test_a_forged_cookie_is_refused_and_a_bearer_token_still_works(world: World) -> None:
    merchant = world.merchant()
    forged = world.client.get("/v1/venues", headers={"Cookie": f"{COOKIE}=forged"})
    assert forged.status_code == 401
    # A bearer token wins over any cookie and needs no CSRF token.
    made = world.client.post(
        "/v1/venues",
        json=new_venue_body(),
        headers={**bearer(merchant["token"]), "Cookie": f"{COOKIE}=forged"},
    )
    assert made.status_code == 201, made.text


def test_whoever_writes_the_store_cannot_forge_or_promote_a_session(
    services: Services,
) -> None:
    from domain.ports import Principal

    backend = MemoryBackend()
    sessions = Sessions(b"k" * 32, backend, services.app.ports.clock)
    merchant = Principal(role="merchant", id=services.app.ports.ids.new())
    session = sessions.open(merchant, "hash-of-token")
    [(name, sealed)] = backend._records.items()
    # The store names the session by a keyed hash and holds no readable id, role or token hash.
    assert session.session_id not in name
    assert b"merchant" not in sealed
    assert b"hash-of-token" not in sealed
    # A record altered in place, or copied under another session's name, opens nothing.
    backend._records[name] = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert sessions.find(session.session_id) is None
    other = sessions.open(merchant, "another")
    other_name = next(n for n in backend._records if n != name)
    backend._records[other_name] = sealed
    assert sessions.find(other.session_id) is None
    # And a store keyed by other service secrets does not recognise the id.
    assert Sessions(b"o" * 32, backend, services.app.ports.clock).find(other.session_id) is None
