"""The API reference page at /schema renders from the service alone: no CDN, no inline code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Route, expect

from interface.http.reference import FILES, PACKAGE
from tests.live import Server, running_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("reference") / "data") as running:
        yield running


def test_the_page_loads_only_from_the_service_under_a_strict_policy(server: Server) -> None:
    with server.client() as anyone:
        page = anyone.get("/schema")
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = {url: anyone.get(url) for url in sources if url.startswith("/")}
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe" not in policy
    assert "<script>" not in page.text
    assert "<style" not in page.text
    assert [url for url in sources if not url.startswith(("/", "data:"))] == []
    assert len(assets) == 4  # Swagger UI's script and styles, its start script, our theme
    for url, asset in assets.items():
        assert asset.status_code == 200, url
        assert "immutable" in asset.headers["cache-control"]


def test_only_swagger_ui_files_are_served(server: Server) -> None:
    with server.client() as anyone:
        assert anyone.get("/static/swagger-ui/package.json").status_code == 404
        assert anyone.get("/static/swagger-ui/..%2Fpackage.json").status_code == 404


@pytest.mark.browser
def test_the_page_shows_the_check_in_operation_with_the_network_off(
    server: Server, browser: Browser
) -> None:
    # given a browser that can reach the service and nothing else
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []
    problems: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(server.base_url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    context.route("**/*", only_the_service)
    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        # when the reference page is opened and the check-in operation expanded
        page.goto(f"{server.base_url}/schema")
        check_in = page.locator("#operations-visitors-check_in")
        expect(check_in).to_be_visible(timeout=15_000)
        expect(check_in).to_contain_text("/v1/check-ins")
        expect(check_in).to_contain_text("Check in at a venue")
        check_in.locator(".opblock-summary").click()

        # then it documents the body it takes, from the document the service served
        expect(check_in.locator(".opblock-section-request-body")).to_be_visible()
        expect(check_in).to_contain_text("A check-in at the venue whose entry code was scanned")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "api-reference-check-in.png"))
    finally:
        context.close()
    assert elsewhere == []
    assert problems == []


def test_the_image_carries_the_files_the_page_loads() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    for name in (*FILES, "package.json"):
        assert f"/build/node_modules/{PACKAGE}/{name}" in dockerfile
