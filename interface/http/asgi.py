"""ASGI factory for servers: `uvicorn --factory interface.http.asgi:build`."""

from __future__ import annotations

from litestar import Litestar

from infrastructure.settings import load_settings
from interface.http.app import create_app


def build() -> Litestar:
    """The app configured from the environment."""
    return create_app(load_settings())
