"""The shopper's phone page: `/c/{code}` checks in, `/o/{code}` checks out (API.md "Visitors")."""

from __future__ import annotations

import hashlib
import html
import re
from functools import cache
from importlib import resources
from string import Template
from typing import Any

import msgspec
from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from domain.errors import InvalidInputError

CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TEMPLATE = "shopper.html"
ASSETS = {
    "shopper.js": "text/javascript",
    "shopper.css": "text/css",
    "api-reference.js": "text/javascript",
    "api-reference.css": "text/css",
}

# The script and the stylesheet are the only sources the page may load: no inline code, so an
# injected tag does nothing. The URL holds the venue code: no referrer carries it elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# Asset URLs carry a hash of their content, so a cached copy can never be stale.
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


class PageData(msgspec.Struct):
    """What the script needs to know about the page it runs on."""

    mode: str
    code: str


@cache
def _static(name: str) -> bytes:
    return (resources.files("interface.http") / "static" / name).read_bytes()


def static_text(name: str) -> str:
    """A file of the static folder, as text."""
    return _static(name).decode()


def asset_url(name: str) -> str:
    """The cache-busting URL of a static asset."""
    version = hashlib.sha256(_static(name)).hexdigest()[:12]
    return f"/static/{name}?v={version}"


def render_page(mode: str, code: str) -> Response[str]:
    """The page for one scanned code; the code reaches the HTML only as escaped JSON."""
    if not CODE_PATTERN.fullmatch(code):
        raise InvalidInputError("this is not a venue code; scan the poster again")
    data = msgspec.json.encode(PageData(mode=mode, code=code)).decode()
    body = Template(static_text(TEMPLATE)).substitute(
        page_data=html.escape(data, quote=True),
        css_url=html.escape(asset_url("shopper.css"), quote=True),
        js_url=html.escape(asset_url("shopper.js"), quote=True),
    )
    return Response(content=body, media_type="text/html", headers=PAGE_HEADERS)


@get("/c/{code:str}", sync_to_thread=False, include_in_schema=False)
def check_in_page(code: FromPath[str]) -> Response[str]:
    """The page an entry poster's QR code opens: register if needed, then check in."""
    return render_page("checkin", code)


@get("/o/{code:str}", sync_to_thread=False, include_in_schema=False)
def check_out_page(code: FromPath[str]) -> Response[str]:
    """The page a till poster's QR code opens: check out."""
    return render_page("checkout", code)


@get("/static/{name:str}", sync_to_thread=False, include_in_schema=False)
def static_asset(name: FromPath[str]) -> Response[bytes]:
    """The page's script and stylesheet (only those: no file system path is ever built)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException("no such file")
    return Response(content=_static(name), media_type=media_type, headers=ASSET_HEADERS)


page_handlers: list[Any] = [check_in_page, check_out_page, static_asset]
