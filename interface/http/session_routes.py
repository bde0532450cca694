"""Sign-in and sign-out of the consoles (`POST /v1/sessions`, `DELETE /v1/sessions/current`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.params import RawBody

from interface.http.auth import (
    principal_by,
    services_of,
    session_of,
    sessions_of,
)
from interface.http.bodies import decode_body
from interface.http.contract import answer, operation
from interface.http.ratelimit import rate_limited
from interface.http.schemas import SignIn
from interface.http.sessions import COOKIE, IDLE_TIMEOUT, SESSION_ROLES, Session

TAG = "sessions"
# The cookie scheme of the API document: these operations answer to the cookie only.
SESSION: list[dict[str, list[str]]] = [{"session": []}]


class SessionOut(msgspec.Struct):
    """Who the session signs in, and the CSRF token that its unsafe requests echo in the
    `X-CSRF-Token` header."""

    role: str
    principal_id: UUID
    csrf_token: str
    idle_timeout_seconds: int


def _out(session: Session) -> SessionOut:
    return SessionOut(
        role=session.principal.role,
        principal_id=session.principal.id,
        csrf_token=session.csrf_token,
        idle_timeout_seconds=int(IDLE_TIMEOUT.total_seconds()),
    )


def _secure(request: Request[Any, Any, Any]) -> bool:
    base = services_of(request).settings.base_url
    return request.url.scheme == "https" or base.startswith("https://")


def _same_site_only(request: Request[Any, Any, Any]) -> None:
    """Refuse a sign-in sent by another site's page (login CSRF), when the browser says so."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise PermissionDeniedException("sign in from this site's own pages")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise PermissionDeniedException("sign in from this site's own pages")


@post(
    "/v1/sessions",
    status_code=201,
    guards=[rate_limited("register")],
    sync_to_thread=True,
    **operation(
        "sign_in",
        "Sign a console in",
        tag=TAG,
        signed_in=False,
        body=SignIn,
        problems=(401, 403, 429),
        answers={201: answer(SessionOut, "The session, set as an HttpOnly cookie.")},
    ),
)
def sign_in(request: Request[Any, Any, Any], body: RawBody) -> Response[SessionOut]:
    """A merchant, officer, auditor or the admin exchanges their token for a session cookie
    (`HttpOnly`, `SameSite=Strict`, `Secure` over https) that ends after 30 idle minutes or
    12 hours.
    Unsafe requests made with the cookie must carry the answer's `csrf_token` in the
    `X-CSRF-Token` header. Shoppers keep their token on the phone."""
    _same_site_only(request)
    req = decode_body(body, SignIn)
    services = services_of(request)
    principal = principal_by(services, f"Bearer {req.token}")
    if principal.role not in SESSION_ROLES:
        raise PermissionDeniedException(f"a {principal.role} does not sign in with a session")
    token_hash = services.app.ports.credentials.token_hash(req.token)
    session = sessions_of(request).open(principal, token_hash)
    cookie = Cookie(
        key=COOKIE,
        value=session.session_id,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return Response(_out(session), status_code=201, cookies=[cookie])


@get(
    "/v1/sessions/current",
    sync_to_thread=True,
    **{
        **operation(
            "current_session", "Show my session", tag=TAG, signed_in=False, problems=(401,)
        ),
        "security": SESSION,
    },
)
def current_session(request: Request[Any, Any, Any]) -> SessionOut:
    """The session of the request's cookie, with its CSRF token (a page reloaded needs it);
    401 when there is none."""
    return _out(session_of(request))


@delete(
    "/v1/sessions/current",
    status_code=204,
    sync_to_thread=True,
    **{
        **operation("sign_out", "Sign out", tag=TAG, signed_in=False, problems=(401, 403)),
        "security": SESSION,
    },
)
def sign_out(request: Request[Any, Any, Any]) -> Response[None]:
    """End the session of the request's cookie at once (with its CSRF token) and clear it."""
    session = session_of(request)
    sessions_of(request).end(session.session_id)
    gone = Cookie(
        key=COOKIE,
        value="",
        path="/",
        max_age=0,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return Response(None, status_code=204, cookies=[gone])


session_handlers = [sign_in, current_session, sign_out]
