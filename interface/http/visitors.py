"""Shoppers: register, check in and out, see their visits, erase their data (API.md "Visitors")."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter, RawBody

from domain.answers import CheckedOut
from domain.errors import InvalidInputError
from domain.ports import VenueView, VisitView
from infrastructure.services import Services
from interface.http.auth import (
    AnonymousIdempotencyKey,
    IdempotencyKey,
    checked_idempotency_key,
    parse_time,
    provide_visitor,
    services_of,
    visitor_by,
)
from interface.http.bodies import decode_body
from interface.http.contract import answer, operation
from interface.http.idempotency import ResponseCache, anonymous_key
from interface.http.ratelimit import enforce_on, rate_limited
from interface.http.schemas import (
    CheckInBody,
    CheckInOut,
    CheckOutBody,
    CheckOutOut,
    NewVisitor,
    RiskOut,
    VenueRef,
    VisitorCreated,
    VisitOut,
    VisitsOut,
)

# Token lookups are a cached dict hit (memory, or Redis behind a per-worker cache): run inline.
VISITOR = {"visitor_id": Provide(provide_visitor, sync_to_thread=False)}
DEFAULT_HISTORY = timedelta(days=28)
OptionalFrom = Annotated[
    str | None,
    QueryParameter(
        name="from",
        required=False,
        description="RFC 3339 time with an offset; default 28 days before `to`.",
    ),
]
OptionalTo = Annotated[
    str | None,
    QueryParameter(
        name="to", required=False, description="RFC 3339 time with an offset; default now."
    ),
]
TAG = "visitors"


def created(body: bytes) -> Response[bytes]:
    """A 201 JSON answer from already encoded bytes."""
    return Response(content=body, status_code=201, media_type="application/json")


def checked_out(result: CheckedOut) -> CheckOutOut:
    """The answer to a check-out, by the visitor or at the till."""
    return CheckOutOut(
        visit_id=result.visit_id,
        checked_out_at=result.checked_out_at,
        dwell_seconds=result.dwell_seconds,
    )


def venue_ref(venue: VenueView | None, venue_id: UUID) -> VenueRef:
    """How a visitor sees a venue."""
    return VenueRef(venue_id=venue_id, name=venue.name if venue else "")


@post(
    "/v1/visitors",
    status_code=201,
    guards=[rate_limited("register")],
    sync_to_thread=True,
    **operation(
        "register_visitor",
        "Register a shopper",
        tag=TAG,
        signed_in=False,
        body=NewVisitor,
        problems=(409, 422, 429),
        answers={201: answer(VisitorCreated, "The new visitor and their bearer token.")},
    ),
)
def register_visitor(
    request: Request[Any, Any, Any], body: RawBody, idempotency: AnonymousIdempotencyKey = None
) -> Response[bytes]:
    """Anyone may register. Every registration makes a new pseudonymous visitor (a family may
    share a phone); name and phone are stored encrypted. The answer holds the only copy of the
    visitor's token. A retry with the same `Idempotency-Key` (16 characters or more) and body
    within ten minutes answers the first registration again."""
    req = decode_body(body, NewVisitor)
    services = services_of(request)
    cache: ResponseCache = request.app.state.responses

    def make(key: str | None) -> bytes:
        made = services.app.register_visitor(req.name, req.phone, req.dependents, key)
        return msgspec.json.encode(VisitorCreated(visitor_id=made.id, token=made.token))

    key = anonymous_key(checked_idempotency_key(idempotency))
    return created(cache.answer_once("visitors", key, msgspec.json.encode(req), make))


CHECK_IN_PATH = "/v1/check-ins"
_encoder = msgspec.json.Encoder()


@post(
    CHECK_IN_PATH,
    status_code=201,
    **operation(
        "check_in",
        "Check in at a venue",
        tag=TAG,
        body=CheckInBody,
        problems=(404, 409, 410, 429),
        answers={201: answer(CheckInOut, "The new visit, with the venue's name.")},
    ),
)
async def check_in(
    request: Request[Any, Any, Any], body: RawBody, idempotency: IdempotencyKey = None
) -> Response[bytes]:
    """A visitor checks in at the venue whose entry code they scanned, with any registered
    dependents in `party`. An open visit elsewhere (or here) is closed first, reason
    `superseded`. An unknown, forged or replaced code answers 400; a checkout code answers
    400 too. The same `Idempotency-Key` again answers the same visit."""
    # The bare route of `interface.http.checkin_route` answers this path in the service, from
    # the same `answer_check_in`; this handler documents it and answers where that is absent.
    headers = request.headers
    found = await answer_check_in(
        request.app.state,
        peer=request.client.host if request.client else "",
        forwarded=",".join(headers.getall("x-forwarded-for", [])) or None,
        authorization=headers.get("authorization"),
        idempotency=idempotency,
        body=body,
    )
    return created(found)


async def answer_check_in(
    state: State,
    *,
    peer: str,
    forwarded: str | None,
    authorization: str | None,
    idempotency: str | None,
    body: bytes,
) -> bytes:
    """A check-in from the parts of its request: the encoded 201 answer, or an error raised.

    The hot path: it runs on the event loop, awaiting its reads and its group commit. The
    rate limit, then the token, then the body are checked, in the order the other routes'
    guards and dependencies check them.
    """
    await enforce_on(state, "check-in", peer=peer, forwarded=forwarded, authorization=authorization)
    services: Services = state.services
    visitor_id = await visitor_by(services, authorization)
    req = decode_body(body, CheckInBody)
    key = checked_idempotency_key(idempotency)
    result = await services.app.check_in(visitor_id, req.code, req.party, key)
    state.metrics.count_check_in()
    # The venue region's risk level (issue 19): a cached read of the read model.
    risk = services.outreach.risk.in_force(result.venue.region)
    return _encoder.encode(
        CheckInOut(
            visit_id=result.visit_id,
            venue=venue_ref(result.venue, result.venue.venue_id),
            checked_in_at=result.checked_in_at,
            party_visit_ids=result.party_visit_ids,
            risk=RiskOut(level=risk.level, since=risk.since),
        )
    )


@post(
    "/v1/check-outs",
    status_code=200,
    dependencies=VISITOR,
    sync_to_thread=True,
    **operation(
        "check_out", "Check out of a visit", tag=TAG, body=CheckOutBody, problems=(404, 409, 410)
    ),
)
def check_out(
    request: Request[Any, Any, Any], visitor_id: NamedDependency[UUID], body: RawBody
) -> CheckOutOut:
    """A visitor closes a visit: by its id (reason `manual`), or by a code of the venue, its
    checkout code (`payment`) or its entry code (`scan`), which closes their whole party there.
    Nothing open there, or a visit already closed, answers 409."""
    req = decode_body(body, CheckOutBody)
    app = services_of(request).app
    if (req.visit_id is None) == (req.code is None):
        raise InvalidInputError("give exactly one of `visit_id` and `code`")
    if req.visit_id is not None:
        result = app.check_out_visit(visitor_id, req.visit_id)
    else:
        assert req.code is not None
        result = app.check_out_by_code(visitor_id, req.code)
    return checked_out(result)


@get(
    "/v1/me/visits",
    dependencies=VISITOR,
    sync_to_thread=True,
    **operation("my_visits", "List my visits", tag=TAG, problems=(400, 410)),
)
def my_visits(
    request: Request[Any, Any, Any],
    visitor_id: NamedDependency[UUID],
    start: OptionalFrom = None,
    end: OptionalTo = None,
) -> VisitsOut:
    """A visitor's own visits and their dependents' (`person`), oldest first; an open visit
    has `checked_out_at: null`. The window is at most 93 days. Reads only."""
    services = services_of(request)
    now = services.app.ports.clock.now()
    to = parse_time(end, "to") if end else now + timedelta(minutes=1)
    since = parse_time(start, "from") if start else to - DEFAULT_HISTORY
    names = services.app.dependent_names(visitor_id)
    return VisitsOut(
        visits=[
            _visit_out(v, services.directory.venue(v.venue_id), names)
            for v in services.app.visits_of(visitor_id, since, to)
        ]
    )


def _visit_out(visit: VisitView, venue: VenueView | None, names: dict[UUID, str]) -> VisitOut:
    return VisitOut(
        visit_id=visit.visit_id,
        venue=venue_ref(venue, visit.venue_id),
        checked_in_at=visit.checked_in_at,
        checked_out_at=visit.checked_out_at,
        checkout_reason=visit.checkout_reason,
        person=names.get(visit.visitor_id, "self"),
    )


@delete(
    "/v1/me",
    status_code=204,
    dependencies=VISITOR,
    sync_to_thread=True,
    **operation("erase_me", "Erase my data", tag=TAG, problems=(410,)),
)
def erase_me(request: Request[Any, Any, Any], visitor_id: NamedDependency[UUID]) -> None:
    """A visitor erases themselves: their key is destroyed, so their name, phone and visits
    become unreadable for good, and their token stops working at once."""
    services_of(request).app.erase_visitor(visitor_id)


visitor_handlers = [register_visitor, check_in, check_out, my_visits, erase_me]
