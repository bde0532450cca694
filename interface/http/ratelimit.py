"""Rate limits on registration and check-in, per client address and per bearer token.

The limiter is `app.state.rate_limiter` and the trusted proxies `app.state.trusted_proxies`
(see `rate_limit_state`). Over a limit the request ends in 429 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from typing import Any

import redis
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import HTTP_429_TOO_MANY_REQUESTS
from litestar.types import Guard

from infrastructure.ops.ratelimit import KEY_PREFIX, Limiter, build_limiter
from infrastructure.readmodels.redis.loop import LoopClients
from infrastructure.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Connection = ASGIConnection[Any, Any, Any, Any]

# More hops than any real proxy chain; a longer header is not walked further.
MAX_FORWARDED_HOPS = 16
MAX_TOKEN_LENGTH = 200


def parse_trusted_proxies(text: str) -> list[Network]:
    """`FANGXIN_TRUSTED_PROXIES`: comma-separated IPs or CIDRs; ValueError when one is bad."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def _parse_address(text: str) -> Address | None:
    entry = text.strip()
    if entry.startswith("["):  # [v6]:port
        entry = entry[1 : entry.find("]")] if "]" in entry else ""
    elif entry.count(":") == 1:  # v4:port
        entry = entry.partition(":")[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, or from X-Forwarded-For when the peer is a trusted proxy.

    Walks the header from the right, past trusted proxies, to the first address that is not
    one; anything left of it was written by the client and may be forged.
    """
    current = _parse_address(peer)
    if current is None or not forwarded_for or not _is_trusted(current, trusted):
        return peer if current is None else str(current)
    hops = forwarded_for.split(",")
    for entry in reversed(hops[-MAX_FORWARDED_HOPS:]):
        address = _parse_address(entry)
        if address is None:
            # A trusted proxy would not write this: keep the last hop we can vouch for.
            return str(current)
        if not _is_trusted(address, trusted):
            return str(address)
        current = address
    return str(current)


def _digest(value: str) -> str:
    # Buckets name hashes: tokens are secrets, and addresses need not sit readable in Redis.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _presented_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


async def enforce(connection: Connection, kind: str) -> None:
    """Count this request against its address (and token); 429 with Retry-After when over."""
    await enforce_on(
        connection.app.state,
        kind,
        peer=connection.client.host if connection.client else "",
        forwarded=",".join(connection.headers.getall("x-forwarded-for", [])) or None,
        authorization=connection.headers.get("authorization"),
    )


async def enforce_on(
    state: State, kind: str, *, peer: str, forwarded: str | None, authorization: str | None
) -> None:
    """`enforce` from the parts of a request: the peer's address, X-Forwarded-For, the token."""
    limiter: Limiter | None = state.get("rate_limiter")
    if limiter is None or limiter.per_minute == 0:
        return
    trusted: Sequence[Network] = state.get("trusted_proxies", ())
    address = client_address(peer, forwarded, trusted)
    wait = await limiter.hit_async(f"{kind}:addr:{_digest(address)}")
    token = _presented_token(authorization)
    if wait is None and token is not None:
        wait = await limiter.hit_async(f"{kind}:token:{_digest(token)}")
    if wait is not None:
        raise HTTPException(
            status_code=HTTP_429_TOO_MANY_REQUESTS,
            detail="too many requests; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def rate_limited(kind: str) -> Guard:
    """A route guard running `enforce` before authentication and body parsing."""

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        await enforce(connection, kind)

    return guard


def rate_limit_state(
    settings: Settings,
    client: redis.Redis | None,
    *,
    prefix: str = KEY_PREFIX,
    loop_clients: LoopClients | None = None,
) -> dict[str, Any]:
    """The app state entries `enforce` reads: the limiter and the parsed trusted proxies."""
    limiter = build_limiter(settings.rate_limit, client, prefix=prefix, loop_clients=loop_clients)
    return {
        "rate_limiter": limiter,
        "trusted_proxies": parse_trusted_proxies(settings.trusted_proxies),
    }
