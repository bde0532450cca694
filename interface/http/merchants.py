"""Merchants and their venues: codes, posters, till actions, statistics (API.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter, RawBody

from domain.answers import VenueCodes
from domain.ports import VenueView
from domain.venues import CodeKind, VenueChanges
from interface.http.auth import (
    AnonymousIdempotencyKey,
    IdempotencyKey,
    checked_idempotency_key,
    provide_merchant,
    services_of,
)
from interface.http.bodies import decode_body
from interface.http.contract import answer, operation
from interface.http.idempotency import ResponseCache, anonymous_key
from interface.http.posters import poster
from interface.http.ratelimit import rate_limited
from interface.http.schemas import (
    AssistedCheckIn,
    AssistedOut,
    CheckOutOut,
    CodesOut,
    MerchantCreated,
    NewMerchant,
    NewVenue,
    TillCheckOut,
    VenueEdit,
    VenueList,
    VenueOut,
)
from interface.http.visitors import checked_out, created

MERCHANT = {"merchant_id": Provide(provide_merchant, sync_to_thread=False)}
T = TypeVar("T")
KindParam = Annotated[
    CodeKind,
    QueryParameter(
        name="kind",
        required=False,
        description="`entry` (the check-in poster) or `checkout` (the till poster).",
    ),
]
TAG = "merchants"


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


@post(
    "/v1/merchants",
    status_code=201,
    guards=[rate_limited("register")],
    sync_to_thread=True,
    **operation(
        "register_merchant",
        "Register a merchant",
        tag=TAG,
        signed_in=False,
        body=NewMerchant,
        problems=(409, 422, 429),
        answers={201: answer(MerchantCreated, "The new merchant and their bearer token.")},
    ),
)
def register_merchant(
    request: Request[Any, Any, Any], body: RawBody, idempotency: AnonymousIdempotencyKey = None
) -> Response[bytes]:
    """Anyone may register a merchant. The answer holds the only copy of the merchant's token.
    A retry with the same `Idempotency-Key` (16 characters or more) and body within ten
    minutes answers the first registration again."""
    req = decode_body(body, NewMerchant)
    services = services_of(request)
    cache: ResponseCache = request.app.state.responses

    def make(key: str | None) -> bytes:
        made = services.app.register_merchant(req.name, req.contact_phone, key)
        return msgspec.json.encode(MerchantCreated(merchant_id=made.id, token=made.token))

    key = anonymous_key(checked_idempotency_key(idempotency))
    return created(cache.answer_once("merchants", key, msgspec.json.encode(req), make))


@post(
    "/v1/venues",
    status_code=201,
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation("register_venue", "Register a venue", tag=TAG, body=NewVenue, problems=(409,)),
)
def register_venue(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    body: RawBody,
    idempotency: IdempotencyKey = None,
) -> VenueOut:
    """A merchant registers a venue in a county-level region that exists. The answer holds its
    entry code and checkout code and the URLs their posters carry."""
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
        checked_idempotency_key(idempotency),
    )
    return venue_out(request, services.app.owned_venue(merchant_id, venue_id))


@get(
    "/v1/venues",
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation("list_venues", "List my venues", tag=TAG),
)
def list_venues(request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID]) -> VenueList:
    """A merchant's own venues, with their current codes. Reads only."""
    venues = services_of(request).app.venues_of(merchant_id)
    return VenueList(venues=[venue_out(request, v) for v in venues])


@get(
    "/v1/venues/{venue_id:uuid}",
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation("show_venue", "Show a venue", tag=TAG, problems=(400, 404)),
)
def show_venue(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID], venue_id: FromPath[UUID]
) -> VenueOut:
    """One of the merchant's own venues with its current codes (another's answers 404)."""
    return venue_out(request, services_of(request).app.owned_venue(merchant_id, venue_id))


@patch(
    "/v1/venues/{venue_id:uuid}",
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation("edit_venue", "Edit a venue", tag=TAG, body=VenueEdit, problems=(400, 404, 409)),
)
def edit_venue(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    body: RawBody,
) -> VenueOut:
    """The owner changes a venue's name, address, category, capacity or maximum dwell, each
    checked as on registration; the codes and posters stay valid (another's venue answers
    404)."""
    req = decode_body(body, VenueEdit)
    changes = VenueChanges(
        name=_given(req.name),
        address=_given(req.address),
        category=_given(req.category),
        capacity=_given(req.capacity),
        keep_capacity=req.capacity is msgspec.UNSET,
        max_dwell_minutes=_given(req.max_dwell_minutes),
    )
    app = services_of(request).app
    return venue_out(request, app.edit_venue(merchant_id, venue_id, changes))


def _given(value: T | msgspec.UnsetType) -> T | None:
    return None if isinstance(value, msgspec.UnsetType) else value


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


@get(
    "/v1/venues/{venue_id:uuid}/poster.svg",
    dependencies=MERCHANT,
    sync_to_thread=True,
    media_type="image/svg+xml",
    **operation("poster_svg", "Print a poster (SVG)", tag=TAG, problems=(400, 404)),
)
def poster_svg(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    kind: KindParam = CodeKind.ENTRY,
) -> Response[bytes]:
    """The owner's printable poster: its QR code holds the venue's `checkin_url`, or with
    `kind=checkout` its `checkout_url` (the till poster)."""
    return _poster(request, merchant_id, venue_id, kind, poster.poster_svg, "image/svg+xml")


@get(
    "/v1/venues/{venue_id:uuid}/poster.png",
    dependencies=MERCHANT,
    sync_to_thread=True,
    media_type="image/png",
    **operation("poster_png", "Print a poster (PNG)", tag=TAG, problems=(400, 404)),
)
def poster_png(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    kind: KindParam = CodeKind.ENTRY,
) -> Response[bytes]:
    """The owner's printable poster as PNG, like `poster.svg`."""
    return _poster(request, merchant_id, venue_id, kind, poster.poster_png, "image/png")


@post(
    "/v1/venues/{venue_id:uuid}/code-rotations",
    status_code=201,
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation("rotate_codes", "Replace a venue's codes", tag=TAG, problems=(400, 404, 409)),
)
def rotate_codes(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID], venue_id: FromPath[UUID]
) -> CodesOut:
    """The owner replaces the venue's entry and checkout codes (a poster leaked): the old codes
    are refused from now on, and new posters must be printed."""
    app = services_of(request).app
    return urls(request, app.codes_of(app.rotate_codes(merchant_id, venue_id)))


@post(
    "/v1/venues/{venue_id:uuid}/assisted-check-ins",
    status_code=201,
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation(
        "assisted_check_in",
        "Check in a person without a phone",
        tag=TAG,
        body=AssistedCheckIn,
        problems=(404, 409),
    ),
)
def assisted_check_in(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    body: RawBody,
    idempotency: IdempotencyKey = None,
) -> AssistedOut:
    """The owner checks in, at the counter, a person who has no phone; name and phone are
    stored encrypted, like a shopper's."""
    req = decode_body(body, AssistedCheckIn)
    result = services_of(request).app.assisted_check_in(
        merchant_id, venue_id, req.name, req.phone, checked_idempotency_key(idempotency)
    )
    return AssistedOut(visit_id=result.visit_id, checked_in_at=result.checked_in_at)


@post(
    "/v1/venues/{venue_id:uuid}/check-outs",
    status_code=200,
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation(
        "till_check_out",
        "Check a visit out at the till",
        tag=TAG,
        body=TillCheckOut,
        problems=(404, 409),
    ),
)
def till_check_out(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    body: RawBody,
) -> CheckOutOut:
    """The owner's till closes a visit at this venue that the shopper showed (reason
    `payment`); one already closed answers 409."""
    req = decode_body(body, TillCheckOut)
    result = services_of(request).app.till_check_out(merchant_id, venue_id, req.visit_id)
    return checked_out(result)


merchant_handlers = [
    register_merchant,
    register_venue,
    list_venues,
    show_venue,
    edit_venue,
    poster_svg,
    poster_png,
    rotate_codes,
    assisted_check_in,
    till_check_out,
]
