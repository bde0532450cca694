"""The litestar application: `create_app(settings)` is the HTTP composition root."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import redis
from litestar import Litestar, Request, Response, get
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme, Tag

from infrastructure.bootstrap import build_services
from infrastructure.ops.duties import Duties
from infrastructure.ops.metrics import Metrics
from infrastructure.projections.health import READ_MODELS, LagWatch, RunnerState
from infrastructure.projections.history_follower import HISTORY
from infrastructure.services import Services
from infrastructure.settings import Settings
from interface.http.accounts import account_handlers
from interface.http.admin import admin_handlers
from interface.http.auth import services_of
from interface.http.case_list import case_list_handlers
from interface.http.cases import case_handlers
from interface.http.checkin_route import CheckInRoute
from interface.http.contract import ContractDocument, operation
from interface.http.events import ExposureHub, event_handlers
from interface.http.idempotency import ResponseCache
from interface.http.merchants import merchant_handlers
from interface.http.notices import notice_handlers, publish_notices
from interface.http.observability import ObservabilityMiddleware, observability_handlers
from interface.http.pages import page_handlers
from interface.http.problems import exception_handlers, problem_type
from interface.http.ratelimit import rate_limit_state
from interface.http.reference import ReferencePage, reference_handlers, schema_router
from interface.http.regions_api import region_handlers
from interface.http.risk import risk_handlers
from interface.http.session_routes import session_handlers
from interface.http.sessions import COOKIE, MemoryBackend, RedisBackend, Sessions
from interface.http.venue_figures import venue_figure_handlers
from interface.http.visitors import visitor_handlers

log = logging.getLogger("fangxin.http")


class ProjectionHealth(msgspec.Struct, omit_defaults=True):
    """A projection's runner: `running`, `failing` (since when) or `stopped`, and since when
    its lag has stayed over the limit; the history of production, followed by another
    process, is `running` or `stalled` (behind, and not moving since when). The error itself
    goes to the log, not to anonymous callers."""

    name: str
    state: str
    failing_since: datetime | None = None
    behind_since: datetime | None = None


class Health(msgspec.Struct, omit_defaults=True, kw_only=True):
    """GET /health; when not ok, also a problem's `type`, `title` and `detail`."""

    status: str
    type: str | None = None
    title: str | None = None
    detail: str | None = None
    event_store: str
    projection_position: int
    projection_lag: int
    redis: str | None = None
    projection: ProjectionHealth
    # The on-disk history's catch-up (production, issue 21): its state, and how far behind.
    history: ProjectionHealth | None = None
    history_lag: int | None = None


@get(
    "/health",
    sync_to_thread=True,
    **operation(
        "health",
        "Check the service's health",
        tag="service",
        signed_in=False,
        answers={
            503: ResponseSpec(
                data_container=Health,
                description="Degraded: also a problem's type, title and detail.",
                generate_examples=False,
            )
        },
    ),
)
def health(request: Request[Any, Any, Any]) -> Response[Health]:
    """Anyone may ask: the state of the event store, Redis and the projection; 503 when one
    is down, or the projection fails, has stopped, or stays too far behind."""
    services = services_of(request)
    store, cache = "ok", None
    down: list[str] = []
    lag: int | None = None
    try:
        lag = services.lag()
    except Exception:  # any failure of the store is reported, not raised
        store = "unavailable"
        down.append("the event store is unavailable")
    if services.redis is not None:
        try:
            services.redis.ping()
            cache = "ok"
        except redis.RedisError:
            cache = "unavailable"
            down.append("Redis is unavailable")
    watch: LagWatch = request.app.state.lag_watch
    projection = _projection_health(services.runner.state(), watch, lag)
    if projection.state != "running":
        down.append(f"the projection {projection.name} is {projection.state}")
    elif projection.behind_since is not None:
        down.append(f"the projection {projection.name} stays behind the log")
    history, history_lag = _history_health(services, down)
    body = Health(
        status="degraded" if down else "ok",
        event_store=f"{'postgresql' if services.settings.uses_postgres else 'sqlite'}: {store}",
        projection_position=services.runner.position if cache != "unavailable" else -1,
        projection_lag=lag or 0,
        redis=cache,
        projection=projection,
        history=history,
        history_lag=history_lag,
    )
    if down:
        body.type, body.title = problem_type("unavailable"), "Service unavailable"
        body.detail = "; ".join(down)
    return Response(body, status_code=503 if down else 200)


def _projection_health(runner: RunnerState, watch: LagWatch, lag: int | None) -> ProjectionHealth:
    behind = watch.behind_since(lag) if lag is not None else None
    return ProjectionHealth(
        name=READ_MODELS,
        state=runner.state,
        failing_since=_second(runner.since) if runner.state == "failing" else None,
        behind_since=_second(behind),
    )


def _history_health(
    services: Services, down: list[str]
) -> tuple[ProjectionHealth | None, int | None]:
    """The history's catch-up and its lag (None where the deployment has none)."""
    follower = services.history
    if follower is None:
        return None, None
    lag = None
    try:
        lag = follower.lag()[1]
    except Exception:  # the store's failure is reported, not raised
        down.append("the history is unavailable")
    # After the lag: a follower in another process is judged from what `lag()` saw.
    state = follower.state()
    if state.state != "running":
        down.append(f"the projection {HISTORY} is {state.state}")
    failing_since = _second(state.since) if state.state == "failing" else None
    behind_since = _second(state.since) if state.state == "stalled" else None
    return ProjectionHealth(
        name=HISTORY, state=state.state, failing_since=failing_since, behind_since=behind_since
    ), lag


def _second(at: datetime | None) -> datetime | None:
    return at.replace(microsecond=0) if at else None


def _lags(services: Services) -> dict[str, tuple[int, int]]:
    """(position, lag) of each projection, for the metrics."""
    lags = {READ_MODELS: (services.runner.position, services.lag())}
    if services.history is not None:
        lags[HISTORY] = services.history.lag()
    return lags


def _venue_name(services: Services, venue_id: UUID) -> str:
    venue = services.directory.venue(venue_id)
    return venue.name if venue else ""


API_DESCRIPTION = """Venue check-in and contact tracing; personal data only ever encrypted.

Send JSON bodies; they are decoded strictly (`"9"` is not a number, unknown fields are
refused). Times are RFC 3339 with a UTC offset. Sign in with `Authorization: Bearer <token>`.
Every refusal is an RFC 9457 problem (`application/problem+json`: `type`, `title`, `status`,
`detail`, and for invalid input `errors: [{field, message}]`); no answer repeats personal data.
Creating POSTs take an `Idempotency-Key` header: a retry with the same key and body answers
the first result and creates nothing new."""
TAGS = [
    Tag(name="visitors", description="Shoppers: register, check in and out, their own data."),
    Tag(name="merchants", description="Merchants and their venues: codes, posters, the till."),
    Tag(name="cases", description="Agencies' tracers and supervisors: cases and exposures."),
    Tag(name="accounts", description="The platform admin: agencies, officers, auditors."),
    Tag(name="audit", description="Auditors: the audit trail and its signed checkpoints."),
    Tag(name="sessions", description="Consoles: a token exchanged for a session cookie."),
    Tag(name="regions", description="The national list of administrative divisions."),
    Tag(name="service", description="The service itself."),
]


# Young-generation collections every this many new container objects instead of CPython's 700.
GC_YOUNG_THRESHOLD = 50_000


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the hot path.

    A check-in allocates a few hundred short-lived objects, and the in-memory read models hold
    millions of long-lived ones. With CPython's defaults, collections came every few requests
    and full ones walked the whole read model: a 100 ms p99 at 16 connections. What exists at
    startup (code, replayed read models) is frozen out of collections, and young collections
    come far less often. Plain reference counting still frees everything acyclic at once.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def create_app(settings: Settings, services: Services | None = None) -> CheckInRoute:
    """Build the HTTP app; services are built at startup unless given (tests may share them).

    It is the litestar app behind the bare check-in route (`interface.http.checkin_route`).
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Blocking handlers wait in threads (above all on a group commit): asyncio's default
        # pool has cpu_count + 4 threads, which would cap a group commit at six writes.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="request")
        )
        own = services is None
        # PostgreSQL workers never run DDL: `fangxin migrate` made the schema before they start.
        built = services or build_services(settings, create_tables=not settings.uses_postgres)
        duties = Duties(built.app, settings.retention_days, settings.auto_checkout_interval_seconds)
        app.state.services = built
        app.state.duties = duties
        hub = ExposureHub(built.visits)
        app.state.hub = hub
        app.state.responses = ResponseCache(built.answers, built.app.ports.clock)
        app.state.sessions = Sessions(
            built.keys.service_key("console-sessions"),
            RedisBackend(built.redis, f"{settings.redis_prefix}sess:")
            if built.redis is not None
            else MemoryBackend(),
            built.app.ports.clock,
        )
        built.on_exposure(
            lambda exposure: hub.publish(exposure, _venue_name(built, exposure.venue_id))
        )
        # Merchants' notices reach connected visitors too (issue 19).
        publish_notices(built, hub)
        if built.new_admin_token:
            # Printed once, on the console only; only its hash is kept.
            print(f"fangxin: admin token (shown once): {built.new_admin_token}", flush=True)
        metrics = Metrics(built.redis, redis_key=f"{settings.redis_prefix}metrics")
        metrics.start()
        app.state.metrics = metrics
        app.state.projection_lag = lambda: _lags(built)
        app.state.lag_watch = LagWatch(
            settings.projection_max_lag, settings.projection_lag_grace_seconds
        )
        app.state.metrics_token = settings.metrics_token
        app.state.group_commit_stats = lambda: built.committer.stats if built.committer else None
        app.state.update(
            rate_limit_state(
                settings,
                built.redis,
                prefix=f"{settings.redis_prefix}rl:",
                loop_clients=built.loop_clients,
            )
        )
        built.start()
        duties.start()
        if own:
            settle_garbage_collector()
        try:
            yield
        finally:
            duties.stop()
            metrics.stop()
            if built.loop_clients is not None:
                await built.loop_clients.close()
            if own:
                built.close()
            else:
                built.runner.stop()

    app = Litestar(
        route_handlers=[
            health,
            *visitor_handlers,
            *merchant_handlers,
            *venue_figure_handlers,
            # Before the POSTs of the same paths: litestar 2.25 answers 500 to a sync POST
            # that returns a Response when a GET of its path is registered after it.
            *account_handlers,
            *case_list_handlers,
            *admin_handlers,
            *case_handlers,
            *event_handlers,
            *observability_handlers,
            *page_handlers,
            *reference_handlers,
            *session_handlers,
            *region_handlers,
            # Notices, risk levels, accesses, merchants' token rotations (issue 19).
            *notice_handlers,
            *risk_handlers,
        ],
        middleware=[ObservabilityMiddleware()],
        lifespan=[lifespan],
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Fangxin",
            version="1",
            description=API_DESCRIPTION,
            render_plugins=[ReferencePage(), ContractDocument()],
            openapi_router=schema_router(),
            use_handler_docstrings=True,
            tags=TAGS,
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="The token a registration or the admin handed out.",
                    ),
                    "session": SecurityScheme(
                        type="apiKey",
                        name=COOKIE,
                        security_scheme_in="cookie",
                        description="A console's session (POST /v1/sessions); unsafe requests "
                        "also send its CSRF token in the X-CSRF-Token header.",
                    ),
                }
            ),
        ),
        debug=False,
        logging_config=None,
    )
    return CheckInRoute(app, settings.max_body_bytes)
