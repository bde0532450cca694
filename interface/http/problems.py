"""The one place that turns errors into RFC 9457 problem details; nothing echoes personal data."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, Literal, get_args, get_origin

import msgspec
from eventsourcing.persistence import InterfaceError, OperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import RedisError

from domain.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    GoneError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from interface.http.field_errors import field_error

log = logging.getLogger("fangxin.http")

PROBLEM_MEDIA_TYPE = "application/problem+json"
_STATUS_OF: list[tuple[type[DomainError], int]] = [
    (InvalidInputError, 400),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (GoneError, 410),
    (UnavailableError, 503),
]
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_KINDS = {
    400: "invalid-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "body-too-large",
    415: "unsupported-media-type",
    422: "idempotency-key-mismatch",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


class FieldProblem(msgspec.Struct):
    """What is wrong with one field (or, with `field` empty, with the whole body)."""

    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem details body; `errors` names each invalid field when known."""

    type: str
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] | None = None


class InvalidFieldError(InvalidInputError):
    """A value the interface refused, with the field it came in (a query parameter, a header)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def problem_type(kind: str) -> str:
    """The problem `type` URI of a kind of problem (a relative reference, as RFC 9457 allows)."""
    return f"/problems/{kind}"


def problem_response(
    status: int, kind: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[bytes]:
    """A problem+json response."""
    body = Problem(
        type=problem_type(kind),
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        **extra,
    )
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def status_of(error: DomainError) -> int:
    """The HTTP status of a domain refusal."""
    for cls, status in _STATUS_OF:
        if isinstance(error, cls):
            return status
    return 400


def problem_for(
    exc: Exception, route: str, choices: dict[str, list[str]] | None = None
) -> Response[bytes]:
    """The problem answer to any error raised while answering a request on `route`.

    `choices` holds the allowed values of the route's enumerated parameters, by name.
    """
    if isinstance(exc, DomainError):
        # Domain refusals: their kind is the problem type, their message is safe to show.
        status = status_of(exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        field = getattr(exc, "field", None)
        errors = [FieldProblem(field, str(exc))] if field is not None else None
        return problem_response(status, exc.kind, str(exc), headers=headers, errors=errors)
    if isinstance(exc, RedisError | OperationalError | InterfaceError):
        return _backend_down(exc, route)
    if isinstance(exc, HTTPException):
        return _http_problem(exc, choices or {})
    # A bug: logged with its type only (no request data), answered without detail.
    log.error("unhandled error", extra={"route": route, "error": type(exc).__name__}, exc_info=exc)
    return problem_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal-error", "")


def _http_problem(exc: HTTPException, choices: dict[str, list[str]]) -> Response[bytes]:
    """Framework errors (validation, auth, routing, body size), keeping their headers."""
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        errors = _errors(exc.extra, choices)
        detail = "; ".join(e.message for e in errors) or "the request does not match the schema"
        return problem_response(400, "invalid-body", detail, errors=errors)
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    detail = exc.detail if status < 500 else ""
    return problem_response(status, _KINDS.get(status, "error"), detail, headers=headers)


def _errors(extra: Any, choices: dict[str, list[str]]) -> list[FieldProblem]:
    # The field and the rule in words, never the submitted value: bodies come translated
    # (`decode_body`), parameters come as litestar's `{key, message, source}`.
    items = extra if isinstance(extra, list) else [extra] if extra else []
    out: list[FieldProblem] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        found = item
        if "field" not in item:
            found = field_error(str(item.get("message", "")), str(item.get("key", "")), choices)
        out.append(FieldProblem(field=str(found["field"]), message=str(found["message"])))
    return out


def _backend_down(exc: Exception, route: str) -> Response[bytes]:
    """Redis or the database unreachable: 503 with Retry-After, never a 500."""
    log.warning("backend unavailable", extra={"route": route, "error": type(exc).__name__})
    return problem_response(
        503, "unavailable", "a backing service is unavailable; retry", headers={"Retry-After": "1"}
    )


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """litestar's handler for every error: `problem_for` on the request's route template."""
    choices = _choices(request) if isinstance(exc, ValidationException) else None
    return problem_for(exc, request.scope.get("path_template", ""), choices)


def _choices(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """The allowed values of the route's enumerated parameters (enums, literals), by name."""
    handler = request.scope.get("route_handler")
    if handler is None:
        return {}
    found: dict[str, list[str]] = {}
    for name, definition in handler.parsed_fn_signature.parameters.items():
        alias = getattr(definition.kwarg_definition, "name", None) or name
        annotation = definition.annotation
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            found[alias] = [str(member.value) for member in annotation]
        elif get_origin(annotation) is Literal:
            found[alias] = [str(value) for value in get_args(annotation)]
    return found


exception_handlers: dict[Any, Any] = {Exception: error_handler}
