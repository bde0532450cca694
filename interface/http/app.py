"""The litestar application: `create_app(settings)` is the HTTP composition root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import msgspec
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from infrastructure.container import Services, build_services
from infrastructure.duties import Duties
from infrastructure.settings import Settings
from interface.http.admin import admin_handlers
from interface.http.auth import services_of
from interface.http.cases import case_handlers
from interface.http.events import ExposureHub, event_handlers
from interface.http.idempotency import ResponseCache
from interface.http.merchants import merchant_handlers
from interface.http.pages import page_handlers
from interface.http.problems import exception_handlers
from interface.http.visitors import visitor_handlers

log = logging.getLogger("fangxin.http")


class Health(msgspec.Struct):
    """GET /health."""

    status: str
    event_store: str
    projection_position: int


@get("/health", sync_to_thread=True)
def health(request: Request[Any, Any, Any]) -> Health:
    """The state of the event store and of the projection."""
    services = services_of(request)
    services.app.recorder.max_notification_id()
    return Health(
        status="ok",
        event_store="postgresql" if services.settings.uses_postgres else "sqlite",
        projection_position=services.runner.position,
    )


def _venue_name(services: Services, venue_id: UUID) -> str:
    venue = services.directory.venue(venue_id)
    return venue.name if venue else ""


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """Build the HTTP app; services are built at startup unless given (tests may share them)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own = services is None
        built = services or build_services(settings)
        duties = Duties(built.app, settings.retention_days, settings.auto_checkout_interval_seconds)
        app.state.services = built
        app.state.duties = duties
        hub = ExposureHub(built.visits)
        app.state.hub = hub
        built.projector.on_exposure(
            lambda exposure: hub.publish(exposure, _venue_name(built, exposure.venue_id))
        )
        if built.new_admin_token:
            # Printed once, on the console only; only its hash is kept.
            print(f"fangxin: admin token (shown once): {built.new_admin_token}", flush=True)
        built.runner.start()
        duties.start()
        try:
            yield
        finally:
            duties.stop()
            if own:
                built.close()
            else:
                built.runner.stop()

    return Litestar(
        route_handlers=[
            health,
            *visitor_handlers,
            *merchant_handlers,
            *admin_handlers,
            *case_handlers,
            *event_handlers,
            *page_handlers,
        ],
        lifespan=[lifespan],
        state=State({"responses": ResponseCache()}),
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Fangxin",
            version="1",
            description="Venue check-in and contact tracing; personal data only ever encrypted.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        debug=False,
    )
