"""The API reference page at `/schema`: Swagger UI served by the service itself, never a CDN.

Swagger UI comes from npm's `swagger-ui-dist`, pinned in package-lock.json and installed by
`npm ci` (the Makefile's runtime target, like the list of regions). The page holds no inline
code, so its Content-Security-Policy allows scripts and styles from this origin only; it reads
the document from `/schema/openapi.json` and works without any network beyond the service.
"""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from litestar import Request, Response, Router, get
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath

from interface.http.pages import ASSET_HEADERS, asset_url, static_text

PACKAGE = "swagger-ui-dist"
FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
SCHEMA_PATH = "/schema"
ASSET_PATH = "/static/swagger-ui"
# Swagger UI sets styles through the DOM (allowed) and loads nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SCHEMA_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def candidate_dirs() -> list[Path]:
    """Where the package may be: beside the source (a checkout) or under the working folder."""
    roots = [Path(__file__).resolve().parents[2], Path.cwd()]
    return [root / "node_modules" / PACKAGE for root in roots]


@cache
def swagger_ui_dir() -> Path | None:
    """The installed package's folder, or None when `npm ci` has not run."""
    for directory in candidate_dirs():
        if all((directory / name).is_file() for name in FILES):
            return directory
    return None


@cache
def _asset(name: str) -> bytes:
    directory = swagger_ui_dir()
    if directory is None:
        raise NotFoundException(
            f"the API reference needs npm's {PACKAGE}: run `npm ci` (`make run` does)"
        )
    return (directory / name).read_bytes()


def swagger_ui_url(name: str) -> str:
    """The cache-busting URL of one of Swagger UI's files (by the installed version)."""
    directory = swagger_ui_dir()
    version = "missing"
    if directory is not None:
        version = json.loads((directory / "package.json").read_bytes())["version"]
    return f"{ASSET_PATH}/{name}?v={version}"


@get(f"{ASSET_PATH}/{{name:str}}", sync_to_thread=False, include_in_schema=False)
def swagger_ui_asset(name: FromPath[str]) -> Response[bytes]:
    """Swagger UI's script and stylesheet (only those: no file system path is ever built)."""
    media_type = FILES.get(name)
    if media_type is None:
        raise NotFoundException("no such file")
    return Response(content=_asset(name), media_type=media_type, headers=ASSET_HEADERS)


class ReferencePage(OpenAPIRenderPlugin):
    """`/schema`: the page that renders the document with Swagger UI."""

    def __init__(self) -> None:
        super().__init__(path="/swagger", media_type=MediaType.HTML)
        self._page: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page; it holds URLs only, the document is fetched by the script."""
        if self._page is None:
            values = {
                "css_url": swagger_ui_url("swagger-ui.css"),
                "bundle_url": swagger_ui_url("swagger-ui-bundle.js"),
                "init_url": asset_url("api-reference.js"),
                "theme_url": asset_url("api-reference.css"),
                "document_url": f"{SCHEMA_PATH}/openapi.json",
            }
            page = Template(static_text("api-reference.html")).substitute(
                {key: html.escape(value, quote=True) for key, value in values.items()}
            )
            self._page = page.encode()
        return self._page


def schema_router() -> Router:
    """The router litestar serves the document and the page under, with the page's headers."""
    return Router(
        SCHEMA_PATH, route_handlers=[], response_headers=SCHEMA_HEADERS, include_in_schema=False
    )


reference_handlers = [swagger_ui_asset]
