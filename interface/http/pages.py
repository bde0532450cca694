"""The pages: the shopper's `/`, `/c/{code}` and `/o/{code}`, the merchant's `/merchant`, and
the agencies', auditors' and admin's `/console`."""

from __future__ import annotations

import hashlib
import html
import re
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from domain.errors import InvalidInputError
from domain.venues import CodeKind
from interface.http.auth import services_of

CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ASSETS = {
    "shopper.js": "text/javascript",
    "shopper.css": "text/css",
    "merchant.js": "text/javascript",
    "console-kit.js": "text/javascript",
    "console.js": "text/javascript",
    "console-cases.js": "text/javascript",
    "console-case.js": "text/javascript",
    "console-queue.js": "text/javascript",
    "console-risk.js": "text/javascript",
    "console-audit.js": "text/javascript",
    "console-admin.js": "text/javascript",
    "console.css": "text/css",
    "merchant-chart.js": "text/javascript",
    "merchant-outreach.js": "text/javascript",
    "shopper-outreach.js": "text/javascript",
    "outreach.css": "text/css",
    "print.js": "text/javascript",
    "api-reference.js": "text/javascript",
    "api-reference.css": "text/css",
}
# Files of pinned npm packages that the pages load (installed by `npm ci`, never a CDN).
VENDOR = {
    "uPlot.iife.min.js": ("uplot/dist/uPlot.iife.min.js", "text/javascript"),
    "uPlot.min.css": ("uplot/dist/uPlot.min.css", "text/css"),
}

PARTS = ("meta", "messages")
# The consoles' look and their shared script, before each console's own files.
CONSOLE_BASE = {"css_url": "shopper.css", "kit_js_url": "console-kit.js"}

# Scripts and stylesheets come only from this origin: no inline code, so an injected tag does
# nothing. The URL holds the venue code: no referrer carries it elsewhere.
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


class PageData(msgspec.Struct, omit_defaults=True):
    """What the script needs to know about the page it runs on."""

    mode: str
    code: str = ""
    venue_name: str = ""
    region_name: str = ""
    # The venue's region code: the page reads its public risk level before the first tap.
    region: str = ""
    problem: str = ""


@cache
def _static(name: str) -> bytes:
    if name in VENDOR:
        return _vendor_file(VENDOR[name][0])
    return (resources.files("interface.http") / "static" / name).read_bytes()


def _vendor_file(relative: str) -> bytes:
    roots = [Path(__file__).resolve().parents[2], Path.cwd()]
    for root in roots:
        path = root / "node_modules" / relative
        if path.is_file():
            return path.read_bytes()
    raise NotFoundException("this file is not installed; run `npm ci`")


def static_text(name: str) -> str:
    """A file of the static folder, as text."""
    return _static(name).decode()


def asset_url(name: str) -> str:
    """The cache-busting URL of a static asset."""
    version = hashlib.sha256(_static(name)).hexdigest()[:12]
    return f"/static/{name}?v={version}"


def render(template: str, data: msgspec.Struct, status: int = 200, **assets: str) -> Response[str]:
    """A page from its template; page data reach the HTML only as escaped JSON. `${meta}` and
    `${messages}` stand for the parts the consoles share (static/*.part.html)."""
    values = {key: html.escape(asset_url(name), quote=True) for key, name in assets.items()}
    parts = {name: static_text(f"{name}.part.html").rstrip("\n") for name in PARTS}
    body = Template(static_text(template)).substitute(
        page_data=html.escape(msgspec.json.encode(data).decode(), quote=True), **parts, **values
    )
    return Response(content=body, status_code=status, media_type="text/html", headers=PAGE_HEADERS)


def shopper_page(data: PageData, status: int = 200) -> Response[str]:
    """The shopper's page in one of its modes."""
    return render(
        "shopper.html",
        data,
        status,
        css_url="shopper.css",
        js_url="shopper.js",
        outreach_css_url="outreach.css",
        outreach_js_url="shopper-outreach.js",
    )


def code_page(request: Request[Any, Any, Any], mode: str, code: str) -> Response[str]:
    """The page of one scanned code, naming its venue before the first tap; an unknown,
    forged or replaced code shows the page with a readable message (404)."""
    app = services_of(request).app
    try:
        if not CODE_PATTERN.fullmatch(code):
            raise InvalidInputError("this is not a venue code; scan the poster again")
        venue, scanned = app.venue_for_code(code)
        if mode == "checkin" and scanned.kind is not CodeKind.ENTRY:
            return shopper_page(PageData(mode="invalid", problem="wrong-code-kind"), 404)
    except InvalidInputError as refused:
        kind = type(refused).__name__
        problem = "venue-code-rotated" if "Rotated" in kind else "invalid-venue-code"
        return shopper_page(PageData(mode="invalid", problem=problem), 404)
    data = PageData(
        mode=mode,
        code=code,
        venue_name=venue.name,
        region_name=app.ports.regions.name(venue.region) or "",
        region=venue.region,
    )
    return shopper_page(data)


@get("/", sync_to_thread=False, include_in_schema=False)
def home_page() -> Response[str]:
    """The shopper's home: their visits, exposure alerts, and erasure."""
    return shopper_page(PageData(mode="home"))


@get("/c/{code:str}", sync_to_thread=True, include_in_schema=False)
def check_in_page(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[str]:
    """The page an entry poster's QR code opens: register and check in with one tap."""
    return code_page(request, "checkin", code)


@get("/o/{code:str}", sync_to_thread=True, include_in_schema=False)
def check_out_page(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[str]:
    """The page a till poster's QR code opens: check out."""
    return code_page(request, "checkout", code)


class ConsoleData(msgspec.Struct, omit_defaults=True):
    """What the merchant console's script needs: the page, and for a print view its poster."""

    mode: str
    venue_id: str = ""
    kind: str = ""


def console_page(data: ConsoleData) -> Response[str]:
    """The merchant console's page, with the chart library."""
    charts = {"chart_css_url": "uPlot.min.css", "chart_lib_url": "uPlot.iife.min.js"}
    return render(
        "merchant.html",
        data,
        200,
        **CONSOLE_BASE,
        **charts,
        chart_js_url="merchant-chart.js",
        js_url="merchant.js",
        outreach_css_url="outreach.css",
        outreach_js_url="merchant-outreach.js",
    )


@get("/merchant", sync_to_thread=False, include_in_schema=False)
def merchant_page() -> Response[str]:
    """The merchant console: sign in, venues, posters, occupancy, statistics, 代登记."""
    return console_page(ConsoleData(mode="console"))


@get("/merchant/posters/{venue_id:uuid}", sync_to_thread=False, include_in_schema=False)
def poster_print_page(venue_id: FromPath[UUID], kind: FromQuery[str] = "entry") -> Response[str]:
    """An A4 print view of a venue's poster (the image is read with the session cookie)."""
    if kind not in ("entry", "checkout"):
        raise InvalidInputError("`kind` is `entry` or `checkout`")
    data = ConsoleData(mode="print", venue_id=str(venue_id), kind=kind)
    return render("poster.html", data, css_url="shopper.css", js_url="print.js")


@get("/console", sync_to_thread=False, include_in_schema=False)
def officers_console_page() -> Response[str]:
    """The console of tracers, supervisors, auditors and the admin: each sees only their part,
    and the API refuses the rest whatever the page shows."""
    parts = ("cases", "case", "queue", "risk", "audit", "admin")
    views = {f"{v}_js_url": f"console-{v}.js" for v in parts}
    return render(
        "console.html",
        ConsoleData(mode="console"),
        200,
        **CONSOLE_BASE,
        **views,
        console_css_url="console.css",
        js_url="console.js",
    )


@get("/static/{name:str}", sync_to_thread=False, include_in_schema=False)
def static_asset(name: FromPath[str]) -> Response[bytes]:
    """The pages' scripts and stylesheets (only those listed: no file system path is built)."""
    media_type = ASSETS.get(name) or VENDOR.get(name, ("", ""))[1]
    if not media_type:
        raise NotFoundException("no such file")
    return Response(content=_static(name), media_type=media_type, headers=ASSET_HEADERS)


page_handlers: list[Any] = [
    home_page,
    check_in_page,
    check_out_page,
    merchant_page,
    officers_console_page,
    poster_print_page,
    static_asset,
]
