"""ASGI factory for servers: `uvicorn --factory interface.http.asgi:build`."""

from __future__ import annotations

from infrastructure.settings import load_settings
from interface.http.app import create_app
from interface.http.checkin_route import CheckInRoute
from interface.http.observability import configure_logging


def build() -> CheckInRoute:
    """The app configured from the environment (JSON-lines logs in every worker)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
