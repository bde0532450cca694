"""The shopper's phone page, driven in headless chromium against the real server over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.live import Server, running_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REPO = Path(__file__).resolve().parents[2]
TOKEN_KEY = "fangxin.token"
START_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Venue:
    """A venue registered by a merchant, with the URLs its posters hold."""

    name: str
    checkin_url: str
    checkout_url: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`fangxin serve` in a subprocess, on a free port, with its own data folder."""
    with running_server(tmp_path_factory.mktemp("fangxin") / "data") as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page that fails the test on any script error or console error."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The API's refusals are expected (the page shows them); anything else is a fault.
        refused_by_api = message.text.startswith("Failed to load resource") and "/v1/" in (
            message.location.get("url", "")
        )
        if message.type == "error" and not refused_by_api:
            problems.append(f"{message.text} ({message.location.get('url', '')})")

    try:
        opened = context.new_page()
        # A CSP violation or an uncaught exception shows up here.
        opened.on("console", on_console)
        opened.on("pageerror", lambda error: problems.append(str(error)))
        yield opened
    finally:
        context.close()
    assert problems == []


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def register_venue(server: Server) -> Venue:
    suffix = uuid.uuid4().hex[:4]
    with server.client() as anyone:
        merchant = anyone.post(
            "/v1/merchants", json={"name": f"老王餐饮 {suffix}", "contact_phone": "13800000000"}
        )
        assert merchant.status_code == 201, merchant.text
    with server.client(merchant.json()["token"]) as owner:
        name = f"老王面馆 {suffix}"
        made = owner.post(
            "/v1/venues",
            json={
                "name": name,
                "address": "上海市黄浦区南京东路 1 号",
                "region": "310101",
                "category": "restaurant",
            },
        )
        assert made.status_code == 201, made.text
    venue = made.json()
    return Venue(name=name, checkin_url=venue["checkin_url"], checkout_url=venue["checkout_url"])


def register_on_page(page: Page, name: str, phone: str) -> None:
    expect(page.get_by_test_id("register")).to_be_visible()
    page.get_by_test_id("name").fill(name)
    page.get_by_test_id("phone").fill(phone)
    page.get_by_test_id("register-submit").click()
    expect(page.get_by_test_id("register")).to_be_hidden()


def stored_token(page: Page) -> str | None:
    token: str | None = page.evaluate("key => window.localStorage.getItem(key)", TOKEN_KEY)
    return token


@pytest.mark.browser
def test_a_shopper_registers_checks_in_and_is_checked_out_at_the_till(
    server: Server, page: Page
) -> None:
    # given a venue with its posters' URLs
    venue = register_venue(server)
    assert venue.checkin_url.startswith(server.base_url)

    # when a new shopper opens the entry poster's URL, it names the venue before any tap
    page.goto(venue.checkin_url)
    expect(page.get_by_test_id("register")).to_be_visible()
    expect(page.get_by_test_id("banner-venue")).to_have_text(venue.name)
    expect(page.get_by_test_id("register-submit")).to_contain_text("登记并入店")
    screenshot(page, "shopper-register.png")
    # and one tap registers and checks in, with no "registered" message above a second button
    with page.expect_request(lambda request: request.url.endswith("/v1/check-ins")) as sent:
        register_on_page(page, "王小明", "13912345678")
    assert sent.value.headers.get("idempotency-key")
    expect(page.get_by_test_id("checkin-button")).to_be_hidden()
    expect(page.get_by_test_id("notice")).not_to_contain_text("登记成功")

    # then a confirmation names the venue, under a clock that ticks
    ticket = page.get_by_test_id("ticket")
    expect(ticket).to_be_visible()
    expect(page.get_by_test_id("ticket-title")).to_contain_text("已登记入店")
    expect(page.get_by_test_id("venue-name")).to_have_text(venue.name)
    expect(page.get_by_test_id("ticket-time")).not_to_be_empty()
    clock = page.get_by_test_id("live-clock")
    first_reading = clock.inner_text()
    expect(clock).not_to_have_text(first_reading, timeout=3000)
    visit = page.get_by_test_id("visit")
    expect(visit).to_have_count(1)
    expect(visit).to_have_attribute("data-state", "open")
    expect(visit).to_contain_text(venue.name)
    screenshot(page, "shopper-checked-in.png")
    token = stored_token(page)
    assert token

    # when the shopper scans the till's checkout poster and checks out
    page.goto(venue.checkout_url)
    expect(page.get_by_test_id("register")).to_be_hidden()
    page.get_by_test_id("checkout-button").click()

    # then the page shows the checkout and the visit closed by payment
    expect(page.get_by_test_id("ticket-title")).to_contain_text("已离店")
    expect(page.get_by_test_id("venue-name")).to_have_text(venue.name)
    expect(page.get_by_test_id("dwell")).to_contain_text("秒")
    expect(visit).to_have_count(1)
    expect(visit).to_have_attribute("data-state", "closed")
    expect(visit).to_have_attribute("data-reason", "payment")
    expect(page.get_by_test_id("visit-status")).to_contain_text("结账离店")
    screenshot(page, "shopper-checked-out.png")

    # and the API agrees
    with server.client(token) as shopper:
        answer = shopper.get("/v1/me/visits")
    assert answer.status_code == 200, answer.text
    visits = answer.json()["visits"]
    assert len(visits) == 1
    assert visits[0]["venue"]["name"] == venue.name
    assert visits[0]["checked_out_at"] is not None
    assert visits[0]["checkout_reason"] == "payment"


@pytest.mark.browser
def test_erasing_from_the_page_forgets_the_token_and_shows_registration(
    server: Server, page: Page
) -> None:
    # given a registered shopper on an entry poster's page
    venue = register_venue(server)
    page.goto(venue.checkin_url)
    register_on_page(page, "李华", "13700000001")
    token = stored_token(page)
    assert token

    # when they erase their data and confirm
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("erase-link").click()

    # then the page forgets them and the server refuses their token
    expect(page.get_by_test_id("register")).to_be_visible()
    expect(page.get_by_test_id("notice")).to_contain_text("已删除")
    assert stored_token(page) is None
    with server.client(token) as shopper:
        assert shopper.get("/v1/me/visits").status_code == 401


@pytest.mark.browser
def test_a_refused_token_is_forgotten_and_registration_shown(server: Server, page: Page) -> None:
    # given a token the server no longer knows (its visitor was erased elsewhere)
    venue = register_venue(server)
    with server.client() as anyone:
        made = anyone.post("/v1/visitors", json={"name": "张三", "phone": "13600000002"})
    token = made.json()["token"]
    with server.client(token) as shopper:
        assert shopper.delete("/v1/me").status_code == 204
    page.goto(venue.checkin_url)
    page.evaluate("([key, value]) => window.localStorage.setItem(key, value)", [TOKEN_KEY, token])

    # when the page is opened again
    page.reload()

    # then it asks to register again and has dropped the token
    expect(page.get_by_test_id("register")).to_be_visible()
    expect(page.get_by_test_id("notice")).to_contain_text("重新登记")
    assert stored_token(page) is None


@pytest.mark.browser
def test_an_api_refusal_is_shown_in_chinese_with_its_detail(server: Server, page: Page) -> None:
    # given a registered shopper on a till's checkout page, with nothing open there
    venue = register_venue(server)
    page.goto(venue.checkout_url)
    register_on_page(page, "赵敏", "13500000003")

    # when they press check-out
    page.get_by_test_id("checkout-button").click()

    # then the refusal reads in Chinese, with the API's detail beneath
    expect(page.get_by_test_id("error-title")).to_contain_text("没有未离店的登记")
    expect(page.get_by_test_id("error-detail")).to_contain_text("no open visit")
    expect(page.get_by_test_id("ticket")).to_be_hidden()
    screenshot(page, "shopper-refused.png")


def test_the_page_is_served_with_security_headers(server: Server) -> None:
    venue = register_venue(server)
    with server.client() as anyone:
        answer = anyone.get(venue.checkin_url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in answer.text


def test_a_malformed_or_forged_code_shows_the_page_with_a_message(server: Server) -> None:
    venue = register_venue(server)
    forged = venue.checkin_url[:-3] + ("AAA" if not venue.checkin_url.endswith("AAA") else "BBB")
    with server.client() as anyone:
        tagged = anyone.get("/c/%3Cscript%3Ealert(1)%3C")
        too_long = anyone.get("/o/" + "a" * 65)
        unknown = anyone.get(forged)
    for answer in (tagged, too_long, unknown):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "<script>alert" not in answer.text
        assert "invalid-venue-code" in answer.text
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"]


def test_the_page_assets_are_served_with_a_cache_header(server: Server) -> None:
    with server.client() as anyone:
        script = anyone.get("/static/shopper.js")
        style = anyone.get("/static/shopper.css")
        other = anyone.get("/static/shopper.html")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "max-age" in script.headers["cache-control"]
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert other.status_code == 404
