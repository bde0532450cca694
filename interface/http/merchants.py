"""Merchants and their venues: codes, posters, till actions, statistics (API.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter, RawBody

from domain.commands import VenueCodes
from domain.errors import InvalidInputError
from domain.ports import VenueView
from domain.stats import Bucket, BucketStats
from domain.venues import CodeKind
from infrastructure import qr
from interface.http.auth import idempotency_key, parse_time, provide_merchant, services_of
from interface.http.bodies import decode_body
from interface.http.idempotency import ResponseCache, anonymous_key
from interface.http.ratelimit import rate_limited
from interface.http.schemas import (
    AssistedCheckIn,
    AssistedOut,
    CheckOutOut,
    CodesOut,
    MerchantCreated,
    NewMerchant,
    NewVenue,
    OccupancyOut,
    StatsBucketOut,
    StatsOut,
    TillCheckOut,
    VenueList,
    VenueOut,
)
from interface.http.visitors import checked_out, created

MERCHANT = {"merchant_id": Provide(provide_merchant, sync_to_thread=False)}
From = Annotated[str | None, QueryParameter(name="from", required=False)]
To = Annotated[str | None, QueryParameter(name="to", required=False)]
BucketParam = Annotated[Bucket, QueryParameter(name="bucket", required=False)]
TzParam = Annotated[str, QueryParameter(name="tz", required=False, max_length=64)]
KindParam = Annotated[CodeKind, QueryParameter(name="kind", required=False)]


def urls(request: Request[Any, Any, Any], codes: VenueCodes) -> CodesOut:
    """The venue's codes and the URLs their posters hold."""
    base = services_of(request).settings.base_url
    return CodesOut(
        code=codes.code,
        checkin_url=f"{base}/c/{codes.code}",
        checkout_code=codes.checkout_code,
        checkout_url=f"{base}/o/{codes.checkout_code}",
    )


def venue_out(request: Request[Any, Any, Any], venue: VenueView) -> VenueOut:
    """A venue as its owner sees it."""
    codes = urls(request, services_of(request).app.codes_of(venue))
    return VenueOut(
        venue_id=venue.venue_id,
        name=venue.name,
        address=venue.address,
        region=venue.region,
        region_name=services_of(request).app.ports.regions.name(venue.region),
        category=venue.category,
        capacity=venue.capacity,
        max_dwell_minutes=venue.max_dwell_minutes,
        code=codes.code,
        checkin_url=codes.checkin_url,
        checkout_code=codes.checkout_code,
        checkout_url=codes.checkout_url,
    )


@post("/v1/merchants", status_code=201, guards=[rate_limited("register")], sync_to_thread=True)
def register_merchant(request: Request[Any, Any, Any], body: RawBody) -> Response[bytes]:
    """Register a merchant; the answer holds the only copy of their token."""
    req = decode_body(body, NewMerchant)
    services = services_of(request)
    cache: ResponseCache = request.app.state.responses

    def make(key: str | None) -> bytes:
        made = services.app.register_merchant(req.name, req.contact_phone, key)
        return msgspec.json.encode(MerchantCreated(merchant_id=made.id, token=made.token))

    key = anonymous_key(idempotency_key(request))
    return created(cache.answer_once("merchants", key, msgspec.json.encode(req), make))


@post("/v1/venues", status_code=201, dependencies=MERCHANT, sync_to_thread=True)
def register_venue(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID], body: RawBody
) -> VenueOut:
    """Register a venue; the answer holds its entry and checkout codes and their URLs."""
    req = decode_body(body, NewVenue)
    services = services_of(request)
    venue_id = services.app.register_venue(
        merchant_id,
        req.name,
        req.address,
        req.region,
        req.category,
        req.capacity,
        req.max_dwell_minutes or services.settings.default_max_dwell_minutes,
        idempotency_key(request),
    )
    return venue_out(request, services.app.owned_venue(merchant_id, venue_id))


@get("/v1/venues", dependencies=MERCHANT, sync_to_thread=True)
def list_venues(request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID]) -> VenueList:
    """The merchant's own venues."""
    venues = services_of(request).app.venues_of(merchant_id)
    return VenueList(venues=[venue_out(request, v) for v in venues])


@get("/v1/venues/{venue_id:uuid}", dependencies=MERCHANT, sync_to_thread=True)
def show_venue(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID], venue_id: FromPath[UUID]
) -> VenueOut:
    """One own venue with its current codes."""
    return venue_out(request, services_of(request).app.owned_venue(merchant_id, venue_id))


Render = Callable[[str, str, CodeKind], bytes]


def _poster(
    request: Request[Any, Any, Any],
    merchant_id: UUID,
    venue_id: UUID,
    kind: CodeKind,
    render: Render,
    media_type: str,
) -> Response[bytes]:
    services = services_of(request)
    venue = services.app.owned_venue(merchant_id, venue_id)
    codes = urls(request, services.app.codes_of(venue))
    url = codes.checkout_url if kind is CodeKind.CHECKOUT else codes.checkin_url
    return Response(
        content=render(url, venue.name, kind),
        media_type=media_type,
        headers={"Cache-Control": "private, no-store"},
    )


@get("/v1/venues/{venue_id:uuid}/poster.svg", dependencies=MERCHANT, sync_to_thread=True)
def poster_svg(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    kind: KindParam = CodeKind.ENTRY,
) -> Response[bytes]:
    """The printable poster; its QR holds the check-in (or, `kind=checkout`, checkout) URL."""
    return _poster(request, merchant_id, venue_id, kind, qr.poster_svg, "image/svg+xml")


@get("/v1/venues/{venue_id:uuid}/poster.png", dependencies=MERCHANT, sync_to_thread=True)
def poster_png(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    kind: KindParam = CodeKind.ENTRY,
) -> Response[bytes]:
    """The printable poster as PNG."""
    return _poster(request, merchant_id, venue_id, kind, qr.poster_png, "image/png")


@post(
    "/v1/venues/{venue_id:uuid}/code-rotations",
    status_code=201,
    dependencies=MERCHANT,
    sync_to_thread=True,
)
def rotate_codes(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID], venue_id: FromPath[UUID]
) -> CodesOut:
    """Replace the venue's codes (a poster leaked); the old codes are refused from now on."""
    app = services_of(request).app
    return urls(request, app.codes_of(app.rotate_codes(merchant_id, venue_id)))


@post(
    "/v1/venues/{venue_id:uuid}/assisted-check-ins",
    status_code=201,
    dependencies=MERCHANT,
    sync_to_thread=True,
)
def assisted_check_in(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    body: RawBody,
) -> AssistedOut:
    """Check in a person without a phone at the counter."""
    req = decode_body(body, AssistedCheckIn)
    result = services_of(request).app.assisted_check_in(
        merchant_id, venue_id, req.name, req.phone, idempotency_key(request)
    )
    return AssistedOut(visit_id=result.visit_id, checked_in_at=result.checked_in_at)


@post(
    "/v1/venues/{venue_id:uuid}/check-outs",
    status_code=200,
    dependencies=MERCHANT,
    sync_to_thread=True,
)
def till_check_out(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    body: RawBody,
) -> CheckOutOut:
    """The till closes a visit it was shown (reason `payment`)."""
    req = decode_body(body, TillCheckOut)
    result = services_of(request).app.till_check_out(merchant_id, venue_id, req.visit_id)
    return checked_out(result)


@get("/v1/venues/{venue_id:uuid}/stats", dependencies=MERCHANT, sync_to_thread=True)
def venue_stats(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    start: From = None,
    end: To = None,
    bucket: BucketParam = Bucket.HOUR,
    tz: TzParam = "UTC",
) -> StatsOut:
    """Check-ins, unique visitors and dwell per hour or day, k-anonymous; never a visitor id.

    `from` and `to` are rounded outward to whole buckets of `tz`; the answer says the window
    it covers. A bucket of fewer than `K` unique visitors is `suppressed`, with no figures.
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError("`tz` is not a known IANA time zone") from None
    app = services_of(request).app
    to = parse_time(end, "to") if end else app.ports.clock.now()
    since = parse_time(start, "from") if start else to - timedelta(days=1)
    stats = app.venue_stats(merchant_id, venue_id, since, to, bucket, zone)
    return StatsOut(
        start=stats.start,
        end=stats.end,
        buckets=[_bucket_out(b) for b in stats.buckets],
        totals=_bucket_out(stats.totals),
    )


def _bucket_out(b: BucketStats) -> StatsBucketOut:
    return StatsBucketOut(
        start=b.start,
        suppressed=b.suppressed,
        check_ins=b.check_ins,
        unique_visitors=b.unique_visitors,
        median_dwell_seconds=b.median_dwell_seconds,
        p90_dwell_seconds=b.p90_dwell_seconds,
        auto_closed=b.auto_closed,
    )


@get("/v1/venues/{venue_id:uuid}/occupancy", dependencies=MERCHANT, sync_to_thread=True)
def occupancy(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID], venue_id: FromPath[UUID]
) -> OccupancyOut:
    """How many people are in the venue now."""
    current, capacity = services_of(request).app.occupancy(merchant_id, venue_id)
    return OccupancyOut(current=current, capacity=capacity)


merchant_handlers = [
    register_merchant,
    register_venue,
    list_venues,
    show_venue,
    poster_svg,
    poster_png,
    rotate_codes,
    assisted_check_in,
    till_check_out,
    venue_stats,
    occupancy,
]
