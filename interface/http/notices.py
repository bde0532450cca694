"""Merchants' notices (精准推送), a merchant's new token, and who read a visitor's data."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, RawBody

from domain.outreach_ports import NoticeView
from domain.ports import VenueView
from domain.token_rotation import rotate_merchant_token
from infrastructure.services import Services
from interface.http.auth import IdempotencyKey, checked_idempotency_key, checked_time, services_of
from interface.http.bodies import decode_body
from interface.http.contract import answer, operation
from interface.http.events import ExposureHub
from interface.http.idempotency import ResponseCache
from interface.http.merchants import MERCHANT
from interface.http.notice_schemas import (
    AccessesOut,
    AccessOut,
    MerchantTokenOut,
    MyNotice,
    MyNotices,
    NewNotice,
    NoticeSent,
)
from interface.http.schemas import VenueRef
from interface.http.visitors import VISITOR, created


def my_notice(notice: NoticeView, venue: VenueView | None) -> MyNotice:
    """A notice as the visitor it reaches sees it."""
    return MyNotice(
        venue=VenueRef(venue_id=notice.venue_id, name=venue.name if venue else ""),
        message=notice.message,
        start=notice.start,
        end=notice.end,
        sent_at=notice.sent_at,
    )


def publish_notices(services: Services, hub: ExposureHub) -> None:
    """Tell connected visitors of each new notice that reaches them (server-sent `notice`)."""
    notices = services.outreach.notices

    def publish(notice: NoticeView) -> None:
        payload = msgspec.json.encode(my_notice(notice, services.directory.venue(notice.venue_id)))
        hub.publish_to(lambda visitor_id: notices.reaches(visitor_id, notice), "notice", payload)

    services.outreach.on_notice(publish)


@post(
    "/v1/venues/{venue_id:uuid}/notices",
    status_code=201,
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation(
        "send_notice",
        "Send a notice to a venue's visitors",
        tag="merchants",
        body=NewNotice,
        problems=(404, 409, 422),
        answers={201: answer(NoticeSent, "How many visitors it reached, never who.")},
    ),
)
def send_notice(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    body: RawBody,
    idempotency: IdempotencyKey = None,
) -> Response[bytes]:
    """The owner sends a notice (1 to 500 characters) to everyone whose visit to the venue
    overlapped [`from`, `to`]: a past window of at most 7 days within retention. They see it
    in GET /v1/me/notices and as a `notice` event. The answer says how many were reached, or
    `"fewer than 5"`; never who. A venue sends at most 5 notices a day (China Standard Time):
    the sixth answers 409 `notice-limit-reached`. The same `Idempotency-Key` and body within
    ten minutes answers the first notice again."""
    req = decode_body(body, NewNotice)
    start, end = checked_time(req.start, "from"), checked_time(req.end, "to")
    services = services_of(request)
    cache: ResponseCache = request.app.state.responses

    def make(_: str | None) -> bytes:
        sent = services.outreach.notices.send(merchant_id, venue_id, req.message, start, end)
        return msgspec.json.encode(NoticeSent(notice_id=sent.notice_id, reached=sent.reached))

    key = checked_idempotency_key(idempotency)
    scope = f"notices|{merchant_id}|{venue_id}"
    return created(cache.answer_once(scope, key, msgspec.json.encode(req), make))


@get(
    "/v1/me/notices",
    dependencies=VISITOR,
    sync_to_thread=True,
    **operation("my_notices", "List venues' notices to me", tag="visitors", problems=(410,)),
)
def my_notices(request: Request[Any, Any, Any], visitor_id: NamedDependency[UUID]) -> MyNotices:
    """Merchants' notices whose window overlaps the visitor's own visits (or their
    dependents'), oldest first. Reads only."""
    found = services_of(request).outreach.notices.notices_of(visitor_id)
    return MyNotices(notices=[my_notice(notice, venue) for notice, venue in found])


@post(
    "/v1/merchants/me/token-rotations",
    status_code=201,
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation(
        "rotate_merchant_token",
        "Replace my token",
        tag="merchants",
        answers={201: answer(MerchantTokenOut, "The new token (its only copy).")},
    ),
)
def rotate_token(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID]
) -> Response[bytes]:
    """A merchant replaces their bearer token: the answer holds the only copy of the new one,
    and the old one is refused at once, by every worker."""
    token = rotate_merchant_token(services_of(request).app, merchant_id)
    return created(msgspec.json.encode(MerchantTokenOut(token=token)))


@get(
    "/v1/me/accesses",
    dependencies=VISITOR,
    sync_to_thread=True,
    **operation("my_accesses", "List who read my data", tag="visitors", problems=(410,)),
)
def my_accesses(request: Request[Any, Any, Any], visitor_id: NamedDependency[UUID]) -> AccessesOut:
    """Every read of the visitor's (or their dependents') data by an agency, oldest first:
    which agency, what it read, when, and the case's legal basis. Only reads on the audit
    trail are listed. Reads only."""
    found = services_of(request).outreach.accesses.of(visitor_id)
    return AccessesOut(
        accesses=[
            AccessOut(agency=a.agency, action=a.action, at=a.at, legal_basis=a.legal_basis)
            for a in found
        ]
    )


notice_handlers = [send_notice, my_notices, rotate_token, my_accesses]
