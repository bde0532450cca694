"""Request metrics, `GET /metrics`, and JSON-lines logs that keep personal data out.

Requests are counted by route template (`/v1/venues/{venue_id}`), never by raw path, which
carries ids and venue codes; tracing work is counted under one route (`infrastructure.metrics`).
`/metrics` answers the admin and the holder of `FANGXIN_METRICS_TOKEN` only. Log records keep
only allow-listed extra fields, and messages, fields and tracebacks pass through redaction of
bearer tokens, secrets and phone numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.eventstore.group_commit import BatchStats
from infrastructure.ops.metrics import Metrics
from interface.http.auth import principal_by, token_in
from interface.http.problems import problem_response

# litestar adds `; charset=utf-8` to every text/* type.
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4"
UNMATCHED_ROUTE = "unmatched"

ProjectionLag = Callable[[], dict[str, tuple[int, int]]]


class ObservabilityMiddleware(ASGIMiddleware):
    """Counts and times HTTP requests by method, route template and status."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Time the request and record its status into `app.state.metrics`."""
        metrics: Metrics | None = scope["litestar_app"].state.get("metrics")
        if metrics is None or scope["type"] != ScopeType.HTTP:
            await next_app(scope, receive, send)
            return
        method = scope["method"]
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = perf_counter()
        try:
            await next_app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("path_template") or UNMATCHED_ROUTE
            metrics.observe_request(method, route, status, perf_counter() - started)


@get("/metrics", sync_to_thread=True, include_in_schema=False)
def metrics_handler(request: Request[Any, Any, Any]) -> Response[Any]:
    """Prometheus metrics: requests, check-ins, durations, projection positions and lag.

    For the admin and the holder of the metrics token only (`require_scraper`).
    """
    require_scraper(request)
    state = request.app.state
    metrics: Metrics = state.metrics
    lag: ProjectionLag | None = state.get("projection_lag")
    try:
        text = metrics.render(lag() if lag is not None else {})
    except (RedisConnectionError, RedisTimeoutError):
        return problem_response(503, "unavailable", "metrics are unavailable")
    batches: Callable[[], BatchStats | None] | None = state.get("group_commit_stats")
    found = batches() if batches is not None else None
    if found is not None:
        text += render_batches(found)
    return Response(content=text.encode(), media_type=METRICS_MEDIA_TYPE)


def require_scraper(request: Request[Any, Any, Any]) -> None:
    """Let the metrics token's holder or the admin through; 401 without a bearer token or
    with an unknown one, 403 with anybody else's."""
    authorization = request.headers.get("authorization")
    token = token_in(authorization)
    configured: str = request.app.state.get("metrics_token") or ""
    if configured and _same(token, configured):
        return
    services = request.app.state.get("services")
    if services is None:
        raise NotAuthorizedException("the bearer token is not valid")
    if principal_by(services, authorization).role != "admin":
        raise PermissionDeniedException("only the admin or the metrics token may read metrics")


def _same(given: str, expected: str) -> bool:
    # Digests of one length: the comparison takes as long whatever the tokens are.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def render_batches(stats: BatchStats) -> str:
    """This worker's group-commit batch sizes (per process: label `pid`)."""
    pid = os.getpid()
    lines = [
        "# HELP fangxin_group_commit_batches_total Transactions flushed by group commit.",
        "# TYPE fangxin_group_commit_batches_total counter",
        f'fangxin_group_commit_batches_total{{pid="{pid}"}} {stats.batches}',
        "# HELP fangxin_group_commit_items_total Writes carried by those transactions.",
        "# TYPE fangxin_group_commit_items_total counter",
        f'fangxin_group_commit_items_total{{pid="{pid}"}} {stats.items}',
        "# HELP fangxin_group_commit_refused_total Writers refused for a conflict, alone.",
        "# TYPE fangxin_group_commit_refused_total counter",
        f'fangxin_group_commit_refused_total{{pid="{pid}"}} {stats.refused}',
        "# HELP fangxin_group_commit_retried_alone_total Writers saved again alone after their"
        " batch failed.",
        "# TYPE fangxin_group_commit_retried_alone_total counter",
        f'fangxin_group_commit_retried_alone_total{{pid="{pid}"}} {stats.retried_alone}',
        "# HELP fangxin_group_commit_batch_size Batches by size (upper bound, power of two).",
        "# TYPE fangxin_group_commit_batch_size gauge",
    ]
    lines += [
        f'fangxin_group_commit_batch_size{{pid="{pid}",le="{size}"}} {count}'
        for size, count in sorted(stats.sizes.items())
    ]
    return "\n".join(lines) + "\n"


observability_handlers = [metrics_handler]


# Logging --------------------------------------------------------------------------------------

# Extra fields a log record may carry; anything else (a name, a phone, a raw path) is dropped.
ALLOWED_EXTRAS = frozenset(
    {
        "route",
        "method",
        "status",
        "duration_ms",
        "error",
        "error_type",
        "count",
        "events",
        "events_per_second",
        "pid",
        "worker",
        "projection",
        "position",
        "lag",
    }
)
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)
_RUN = r"[A-Za-z0-9_\-]"
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer)\s+[^\s,;\"']+"), r"\1 [redacted]"),
    (
        re.compile(
            r"(?i)\b(token|authorization|password|passwd|secret|api[_-]?key|master[_-]?key)"
            r"(\"?\s*[:=]\s*\"?)(?!bearer\s|\[redacted\])[^\s,;\"'&]+"
        ),
        r"\1\2[redacted]",
    ),
    # Opaque secrets: long runs of URL-safe characters with a digit or with mixed case
    # (tokens, keys, hashes), unlike the lower-case snake_case of identifiers.
    (
        re.compile(
            rf"(?<!{_RUN})(?:(?={_RUN}*[0-9])|(?={_RUN}*[a-z])(?={_RUN}*[A-Z])){_RUN}{{32,}}"
            rf"(?!{_RUN})"
        ),
        "[redacted]",
    ),
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"), "[email]"),
    # Phone numbers: international with +, Chinese mobiles, and area-code landlines.
    (re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s\-]?\d){6,14}(?!\d)"), "[phone]"),
    (re.compile(r"(?<!\d)(?:86[\s\-]?)?1[3-9]\d(?:[\s\-]?\d{4}){2}(?!\d)"), "[phone]"),
    (re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)"), "[phone]"),
]


def redact(text: str) -> str:
    """The text with bearer tokens, secrets, e-mail addresses and phone numbers masked."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _safe_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class PrivacyFilter(logging.Filter):
    """Drops extra fields outside the allow-list and redacts the message and the kept fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key in [k for k in record.__dict__ if k not in _STANDARD_ATTRIBUTES]:
            if key in ALLOWED_EXTRAS:
                record.__dict__[key] = _safe_value(record.__dict__[key])
            else:
                del record.__dict__[key]
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, pid and allow-listed fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(message),
            "pid": record.process,
        }
        for key in ALLOWED_EXTRAS & record.__dict__.keys():
            payload[key] = _safe_value(record.__dict__[key])
        if record.exc_info and record.exc_info[1] is not None:
            payload.setdefault("error_type", type(record.exc_info[1]).__name__)
            payload["traceback"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


class RedactingTextFormatter(logging.Formatter):
    """Plain text lines for a terminal, redacted like the JSON ones."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as redacted text."""
        return redact(super().format(record))


_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "granian")
# Access lines carry raw paths (ids, venue codes) and client addresses: kept quiet.
_ACCESS_LOGGERS = ("uvicorn.access", "granian.access")


def configure_logging(level: str, fmt: str) -> None:
    """Send every log record, the server's included, as redacted JSON lines (or text) to stderr."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonLinesFormatter()
    elif fmt == "text":
        formatter = RedactingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        raise ValueError(f"unknown log format {fmt!r} (json or text)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(PrivacyFilter())
    handler.set_name("fangxin")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "fangxin"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in (*_SERVER_LOGGERS, *_ACCESS_LOGGERS):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    for name in _ACCESS_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
