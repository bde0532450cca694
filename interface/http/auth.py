"""Bearer-token authentication and role checks, as litestar dependencies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import HeaderParameter

from domain.ports import Principal
from infrastructure.services import Services
from interface.http.field_errors import RFC3339_WORDS
from interface.http.problems import InvalidFieldError
from interface.http.sessions import COOKIE, CSRF_HEADER, SAFE_METHODS, Session, Sessions

MAX_TOKEN_LENGTH = 200
# Documented here, checked by `checked_idempotency_key` after the token, as every body is.
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="1 to 200 characters, such as a random UUID: a retry with the same key "
        "and body answers the first result and creates nothing new.",
    ),
]
AnonymousIdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="16 to 200 characters, such as a random UUID: a retry with the same key "
        "and body within ten minutes answers the first result (with its token) again.",
    ),
]
# Every accepted time lies in this range, so date arithmetic on it (a default window of days
# before it, a bucket after it, a conversion to any zone) stays far from year 1 and year 9999.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)


class TimeWithoutOffsetError(InvalidFieldError):
    """A time was given without its UTC offset."""

    kind = "time-without-offset"


class TimeOutOfRangeError(InvalidFieldError):
    """A time lies outside the years that Fangxin accepts."""

    kind = "time-out-of-range"


def services_of(request: Request[Any, Any, Any]) -> Services:
    """The process's services, put on the app state by the lifespan."""
    services: Services = request.app.state.services
    return services


ADMIN_ID = UUID(int=0)
OFFICER_ROLES = ("tracer", "supervisor")


def token_in(authorization: str | None) -> str:
    """The bearer token of an `Authorization` header; 401 when there is none."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise NotAuthorizedException("a bearer token is required")
    return token


def principal_by(services: Services, authorization: str | None) -> Principal:
    """Who presents the bearer token of an `Authorization` header; 401 when it is unknown."""
    token = token_in(authorization)
    token_hash = services.app.ports.credentials.token_hash(token)
    return _known(services, token_hash, services.directory.principal(token_hash))


async def principal_by_async(services: Services, authorization: str | None) -> Principal:
    """`principal_by` on the event loop: the token's read is awaited."""
    token = token_in(authorization)
    token_hash = services.app.ports.credentials.token_hash(token)
    return _known(services, token_hash, await services.directory.principal_async(token_hash))


def principal_of_hash(services: Services, token_hash: str) -> Principal | None:
    """Who holds the token of this hash now: an account, the admin, or nobody."""
    principal = services.directory.principal(token_hash)
    if principal is None and services.admin.is_admin_hash(token_hash):
        return Principal(role="admin", id=ADMIN_ID)
    return principal


def _known(services: Services, token_hash: str, principal: Principal | None) -> Principal:
    if principal is None:
        if services.admin.is_admin_hash(token_hash):
            return Principal(role="admin", id=ADMIN_ID)
        raise NotAuthorizedException("the bearer token is not valid")
    return principal


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    """Who presents the request's bearer token, or else its session cookie; 401 when unknown.

    A bearer token wins over a cookie: API clients never need the CSRF header.
    """
    authorization = request.headers.get("authorization")
    if authorization is None and request.cookies.get(COOKIE):
        return session_of(request).principal
    return principal_by(services_of(request), authorization)


def sessions_of(request: Request[Any, Any, Any]) -> Sessions:
    """The process's console sessions, put on the app state by the lifespan."""
    sessions: Sessions = request.app.state.sessions
    return sessions


def session_of(request: Request[Any, Any, Any]) -> Session:
    """The live session of the request's cookie; 401 when it has ended, 403 when an unsafe
    request lacks its CSRF token, so another site cannot act with the cookie."""
    sessions = sessions_of(request)
    session = sessions.find(request.cookies.get(COOKIE, ""))
    if session is None:
        raise NotAuthorizedException("the session has ended; sign in again")
    if request.method not in SAFE_METHODS and not sessions.csrf_matches(
        session, request.headers.get(CSRF_HEADER)
    ):
        raise PermissionDeniedException("the X-CSRF-Token header is missing or wrong")
    # The token may have been rotated or its account deleted since the session began.
    current = principal_of_hash(services_of(request), session.token_hash)
    if current is None or (current.role, current.id) != (
        session.principal.role,
        session.principal.id,
    ):
        sessions.end(session.session_id)
        raise NotAuthorizedException("the session's token is no longer valid; sign in again")
    return msgspec.structs.replace(session, principal=current)


async def visitor_by(services: Services, authorization: str | None) -> UUID:
    """The visitor presenting an `Authorization` header; 401 or 403 when it is not one."""
    return _role(await principal_by_async(services, authorization), "visitor")


def _role(principal: Principal, role: str) -> UUID:
    if principal.role != role:
        raise PermissionDeniedException(f"only a {role} may do this")
    return principal.id


def _require(request: Request[Any, Any, Any], role: str) -> UUID:
    return _role(principal_of(request), role)


def provide_visitor(request: Request[Any, Any, Any]) -> UUID:
    """The authenticated visitor's id."""
    return _require(request, "visitor")


def provide_merchant(request: Request[Any, Any, Any]) -> UUID:
    """The authenticated merchant's id."""
    return _require(request, "merchant")


def provide_admin(request: Request[Any, Any, Any]) -> UUID:
    """The platform admin (who manages agencies, officers and auditors, and reads nothing)."""
    return _require(request, "admin")


def provide_auditor(request: Request[Any, Any, Any]) -> UUID:
    """The authenticated auditor's id."""
    return _require(request, "auditor")


def provide_officer(request: Request[Any, Any, Any]) -> Principal:
    """A tracer or supervisor of an agency."""
    principal = principal_of(request)
    if principal.role not in OFFICER_ROLES:
        raise PermissionDeniedException("only agency officers may do this")
    return principal


def checked_idempotency_key(key: str | None) -> str | None:
    """An `Idempotency-Key` header's value; 400 unless it has 1 to 200 characters."""
    if key is not None and not 1 <= len(key) <= MAX_TOKEN_LENGTH:
        raise InvalidFieldError("Idempotency-Key must have 1 to 200 characters", "Idempotency-Key")
    return key


def parse_time(value: str, name: str) -> datetime:
    """An RFC 3339 time with an offset, within the accepted range (`checked_time`)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFieldError(f"{name} must be {RFC3339_WORDS}", name) from None
    if "T" not in value.upper():
        raise TimeWithoutOffsetError(f"{name} needs a UTC offset, e.g. 2026-03-04T09:30:00Z", name)
    return checked_time(parsed, name)


def checked_time(value: datetime, name: str) -> datetime:
    """`value` if it has a UTC offset and lies in [2000-01-01, 2100-01-01] UTC; else 400.

    For any time a client sends, in a query or a body: times outside the range answer 400
    (`time-out-of-range`) naming `name`, instead of overflowing later in date arithmetic.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise TimeWithoutOffsetError(f"{name} needs a UTC offset, e.g. 2026-03-04T09:30:00Z", name)
    # Compared as aware times, which never converts (and so never overflows) at year 1 or 9999.
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise TimeOutOfRangeError(
            f"{name} must lie between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d} (UTC)",
            name,
        )
    return value
