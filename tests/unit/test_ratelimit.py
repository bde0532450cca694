"""Rate limits in process memory, the client address behind proxies, and the 429 answer."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.testing import TestClient, create_test_client

from infrastructure.ops.ratelimit import MemoryRateLimiter
from infrastructure.settings import load_settings
from interface.http.problems import exception_handlers
from interface.http.ratelimit import (
    client_address,
    enforce,
    parse_trusted_proxies,
    rate_limit_state,
    rate_limited,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.168.1.5, fd00::/8")


def test_the_hit_past_the_limit_waits_until_the_window_ends() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(2, clock=clock)
    limiter.hit("a")
    clock.now += 15
    limiter.hit("a")

    assert limiter.hit("a") == pytest.approx(45.0)


def test_a_new_window_starts_after_a_minute() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(1, clock=clock)
    limiter.hit("a")
    assert limiter.hit("a") is not None
    clock.now += 60

    assert limiter.hit("a") is None


def test_a_limit_of_zero_allows_everything() -> None:
    limiter = MemoryRateLimiter(0, clock=FakeClock())

    assert all(limiter.hit("a") is None for _ in range(1000))


def test_closed_windows_are_forgotten() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(5, clock=clock)
    for n in range(100):
        limiter.hit(f"client-{n}")
    clock.now += 61

    limiter.hit("late")

    assert list(limiter._windows) == ["late"]


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("203.0.113.7", "198.51.100.1", []) == "203.0.113.7"


def test_a_forwarded_header_from_an_untrusted_peer_is_ignored() -> None:
    assert client_address("203.0.113.7", "198.51.100.1", PROXIES) == "203.0.113.7"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_address("10.1.2.3", "198.51.100.1", PROXIES) == "198.51.100.1"


def test_a_chain_of_proxies_is_walked_to_the_first_untrusted_hop() -> None:
    forwarded = "1.1.1.1, 198.51.100.1, 192.168.1.5, 10.9.9.9"

    assert client_address("10.1.2.3", forwarded, PROXIES) == "198.51.100.1"


def test_addresses_the_client_wrote_left_of_its_own_are_not_believed() -> None:
    spoofed = "10.0.0.1, 203.0.113.99"

    assert client_address("10.1.2.3", spoofed, PROXIES) == "203.0.113.99"


def test_garbage_in_the_header_falls_back_to_the_last_trusted_hop() -> None:
    assert client_address("10.1.2.3", "'; DROP TABLE --, 10.4.4.4", PROXIES) == "10.4.4.4"


def test_an_empty_header_leaves_the_peer() -> None:
    assert client_address("10.1.2.3", " , ", PROXIES) == "10.1.2.3"


def test_ports_and_brackets_in_the_header_are_understood() -> None:
    assert client_address("10.1.2.3", "198.51.100.1:4711", PROXIES) == "198.51.100.1"
    assert client_address("10.1.2.3", "[2001:db8::1]:443", PROXIES) == "2001:db8::1"


def test_ipv6_proxies_are_matched() -> None:
    assert client_address("fd00::1", "2001:db8::5", PROXIES) == "2001:db8::5"


def test_an_ipv4_mapped_peer_is_matched_as_ipv4() -> None:
    assert client_address("::ffff:10.1.2.3", "198.51.100.1", PROXIES) == "198.51.100.1"


def test_a_peer_that_is_no_address_is_kept_as_it_is() -> None:
    assert client_address("testclient", "198.51.100.1", PROXIES) == "testclient"


def test_all_hops_trusted_gives_the_left_most() -> None:
    assert client_address("10.1.2.3", "10.0.0.9, 10.0.0.8", PROXIES) == "10.0.0.9"


def test_trusted_proxies_are_parsed_as_networks() -> None:
    assert parse_trusted_proxies(" 10.0.0.1 ,192.168.0.0/16,") == [
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
    ]


def test_a_bad_trusted_proxy_is_refused() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        parse_trusted_proxies("10.0.0.1, proxy.example")


class RecordingLimiter:
    """Records the buckets it is asked about; buckets named in `waits` are over the limit."""

    per_minute = 10

    def __init__(self, waits: dict[str, float] | None = None) -> None:
        self.waits = waits or {}
        self.buckets: list[str] = []

    def hit(self, bucket: str) -> float | None:
        self.buckets.append(bucket)
        return next((w for part, w in self.waits.items() if part in bucket), None)

    async def hit_async(self, bucket: str) -> float | None:
        return self.hit(bucket)


@post("/enforced", status_code=201)
async def enforced(request: Request[Any, Any, Any]) -> None:
    await enforce(request, "register")


@get("/guarded", guards=[rate_limited("check-in")])
async def guarded() -> None:
    return None


def client_with(limiter: object) -> TestClient[Any]:
    state = State({"rate_limiter": limiter, "trusted_proxies": PROXIES})
    return create_test_client(
        [enforced, guarded], state=state, exception_handlers=exception_handlers, debug=False
    )


def test_past_the_limit_the_answer_is_429_with_retry_after() -> None:
    with client_with(MemoryRateLimiter(2)) as client:
        statuses = [client.post("/enforced").status_code for _ in range(3)]
        response = client.post("/enforced")

    assert statuses == [201, 201, 429]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/rate-limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_the_address_and_the_token_are_counted_under_hashes() -> None:
    limiter = RecordingLimiter()
    with client_with(limiter) as client:
        client.get("/guarded", headers={"Authorization": "Bearer secret-token-one"})

    assert [b.split(":")[:2] for b in limiter.buckets] == [
        ["check-in", "addr"],
        ["check-in", "token"],
    ]
    assert not any("secret-token-one" in b or "testclient" in b for b in limiter.buckets)


def test_each_token_has_its_own_bucket() -> None:
    limiter = RecordingLimiter()
    with client_with(limiter) as client:
        client.get("/guarded", headers={"Authorization": "Bearer token-one"})
        client.get("/guarded", headers={"Authorization": "Bearer token-two"})

    tokens = [b for b in limiter.buckets if ":token:" in b]
    assert len(set(tokens)) == 2


def test_a_token_over_its_limit_is_refused_with_a_whole_second_to_wait() -> None:
    with client_with(RecordingLimiter({":token:": 0.2})) as client:
        response = client.get("/guarded", headers={"Authorization": "Bearer token-one"})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"


def test_a_request_without_a_token_is_counted_by_address_only() -> None:
    limiter = RecordingLimiter()
    with client_with(limiter) as client:
        client.post("/enforced")

    assert [b.split(":")[1] for b in limiter.buckets] == ["addr"]


def test_a_disabled_limiter_is_not_asked() -> None:
    limiter = RecordingLimiter()
    limiter.per_minute = 0
    with client_with(limiter) as client:
        assert client.post("/enforced").status_code == 201

    assert limiter.buckets == []


def test_without_a_limiter_nothing_is_limited() -> None:
    with create_test_client([enforced], debug=False) as client:
        assert all(client.post("/enforced").status_code == 201 for _ in range(5))


def test_the_state_helper_parses_the_settings() -> None:
    settings = load_settings({}, rate_limit=30, trusted_proxies="10.0.0.0/8")

    state = rate_limit_state(settings, None)

    assert isinstance(state["rate_limiter"], MemoryRateLimiter)
    assert state["rate_limiter"].per_minute == 30
    assert state["trusted_proxies"] == [ipaddress.ip_network("10.0.0.0/8")]
