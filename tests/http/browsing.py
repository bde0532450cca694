"""What the browser walks share: contexts that fail on a script error or a CSP violation,
axe-core, screenshots into docs/screenshots, text and target sizes, and API calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from tests.live import Server

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS: dict[str, dict[str, Any]] = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "tablet": {"viewport": {"width": 820, "height": 1180}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}


class Watched:
    """A browser context whose pages fail the test on a script error or a CSP violation."""

    def __init__(self, browser: Browser, size: str) -> None:
        self.context: BrowserContext = browser.new_context(
            **VIEWPORTS[size], locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        self.size = size
        self.problems: list[str] = []

    def page(self) -> Page:
        opened = self.context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            refused_by_api = "/v1/" in message.location.get("url", "")
            if message.type == "error" and not refused_by_api:
                self.problems.append(f"{message.text} ({message.location.get('url', '')})")

        opened.on("console", on_console)
        opened.on("pageerror", lambda error: self.problems.append(str(error)))
        return opened


def check_accessible(page: Page) -> None:
    """axe-core (npm, pinned) finds no serious or critical violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target).slice(0, 3)}))"
    )
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert bad == [], bad


def shoot(page: Page, name: str, size: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)


def text_sizes_ok(page: Page) -> None:
    """Body text is at least 16 px and every visible button or link at least 44 px tall (a
    checkbox or radio button is reached by its label)."""
    small: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll('p, span, li, td, th, label, button, a'))
        .filter(e => e.offsetParent !== null && e.textContent.trim())
        .filter(e => parseFloat(getComputedStyle(e).fontSize) < 16)
        .map(e => e.textContent.trim().slice(0, 30))"""
    )
    assert small == []
    low: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll('button, a.secondary, input, select'))
        .filter(e => e.offsetParent !== null && !['checkbox', 'radio'].includes(e.type))
        .filter(e => e.getBoundingClientRect().height < 44)
        .map(e => e.outerHTML.slice(0, 60))"""
    )
    assert low == []


def api(server: Server, method: str, path: str, token: str | None, **kw: Any) -> Any:
    with server.client(token) as client:
        answer = client.request(method, path, **kw)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None
