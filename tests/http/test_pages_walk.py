"""The merchant console and the shopper's pages walked end to end in headless chromium, at a
phone and a desktop size, with axe-core on every page and screenshots for docs/screenshots."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.http.browsing import Watched, api, check_accessible, shoot, text_sizes_ok
from tests.live import Server, running_server

ADMIN = "walk-admin-token-" + "x" * 24


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("walk") / "data", FANGXIN_ADMIN_TOKEN=ADMIN
    ) as running:
        yield running


@pytest.fixture(params=["phone", "desktop"])
def watched(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Watched]:
    made = Watched(browser, request.param)
    try:
        yield made
    finally:
        made.context.close()
    assert made.problems == []


ADVICE = "请居家观察 14 天 Stay at home and watch your health for 14 days"


def decode_poster(server: Server, context: BrowserContext, venue_id: str) -> str:
    """The URL in the entry poster's QR code, fetched with the console's session cookie."""
    import zxingcpp
    from PIL import Image

    png = context.request.get(f"{server.base_url}/v1/venues/{venue_id}/poster.png")
    assert png.status == 200
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.body())))
    return str(decoded.text)


def merchant_registers_and_creates_a_venue(watched: Watched, server: Server) -> tuple[Page, str]:
    page = watched.page()
    page.goto(f"{server.base_url}/merchant")
    expect(page.get_by_test_id("signed-out")).to_be_visible()
    check_accessible(page)
    text_sizes_ok(page)
    shoot(page, "merchant-sign-in", watched.size)
    page.get_by_test_id("merchant-name").fill("老王餐饮")
    page.get_by_test_id("merchant-phone").fill("13800000000")
    page.get_by_test_id("merchant-register-submit").click()
    expect(page.get_by_test_id("token-once")).to_be_visible()
    assert len(page.get_by_test_id("token-value").inner_text()) >= 20
    check_accessible(page)
    page.get_by_test_id("token-continue").click()
    expect(page.get_by_test_id("signed-in")).to_be_visible()
    expect(page.get_by_test_id("token-once")).to_be_hidden()
    # A session cookie now signs the console in, and a script cannot read it.
    assert page.evaluate("() => document.cookie") == ""

    page.get_by_test_id("new-venue").click()
    expect(page.get_by_test_id("venue-form")).to_be_visible()
    name = f"老王面馆 {uuid.uuid4().hex[:4]}"
    page.get_by_test_id("venue-name-input").fill(name)
    page.get_by_test_id("venue-address").fill("上海市黄浦区南京东路 1 号")
    expect(page.locator('[data-testid="region-province"] option[value="310000"]')).to_be_attached()
    page.get_by_test_id("region-province").select_option("310000")
    expect(page.locator('[data-testid="region-city"] option[value="310100"]')).to_be_attached()
    page.get_by_test_id("region-city").select_option("310100")
    expect(page.locator('[data-testid="region-county"] option[value="310101"]')).to_be_attached()
    page.get_by_test_id("region-county").select_option("310101")
    page.get_by_test_id("venue-capacity").fill("40")
    check_accessible(page)
    shoot(page, "merchant-new-venue", watched.size)
    page.get_by_test_id("venue-submit").click()
    expect(page.get_by_test_id("detail-name")).to_have_text(name)
    expect(page.get_by_test_id("detail-address")).to_contain_text("黄浦区")
    expect(page.get_by_test_id("occupancy-text")).to_contain_text("0 / 40")
    return page, name


def walk_world(server: Server, venue_code: str) -> None:
    """Five other shoppers check in and out (the running hour stays suppressed regardless)."""
    for n in range(5):
        made = api(
            server, "POST", "/v1/visitors", None, json={"name": f"V{n}", "phone": f"1390000{n:04d}"}
        )
        api(server, "POST", "/v1/check-ins", made["token"], json={"code": venue_code})
        api(server, "POST", "/v1/check-outs", made["token"], json={"code": venue_code})


@pytest.mark.browser
def test_a_merchant_and_a_shopper_walk_through_the_pages(server: Server, watched: Watched) -> None:
    # A merchant registers on the console, is shown the token once, creates a venue.
    console, name = merchant_registers_and_creates_a_venue(watched, server)
    check_accessible(console)
    venue_id = console.evaluate("() => document.querySelector('[data-testid=print-entry]').href")
    venue_id = venue_id.split("/merchant/posters/")[1].split("?")[0]

    # The poster previews, and its A4 print view loads it with the session cookie.
    expect(console.get_by_test_id("poster-entry")).to_have_js_property("complete", True)
    assert console.get_by_test_id("poster-entry").evaluate("img => img.naturalWidth") > 0
    printed = watched.page()
    printed.goto(f"{server.base_url}/merchant/posters/{venue_id}?kind=entry")
    expect(printed.get_by_test_id("poster-image")).to_have_js_property("complete", True)
    assert printed.get_by_test_id("poster-image").evaluate("img => img.naturalWidth") > 0
    expect(printed.get_by_test_id("error")).to_be_hidden()
    check_accessible(printed)
    shoot(printed, "merchant-poster-print", watched.size)
    checkin_url = decode_poster(server, watched.context, venue_id)
    assert checkin_url.startswith(f"{server.base_url}/c/")
    code = checkin_url.rsplit("/", 1)[1]

    # A supervisor raises the district's level to medium.
    officers = agency_officers(server)
    api(server, "PUT", "/v1/regions/310101/risk", officers["supervisor"], json={"level": "medium"})

    # A shopper scans it: the venue and its district's level are shown before the tap, and one
    # tap registers and checks in.
    shopper = watched.page()
    shopper.goto(checkin_url)
    expect(shopper.get_by_test_id("banner-venue")).to_have_text(name)
    expect(shopper.get_by_test_id("banner-region")).to_contain_text("黄浦区")
    expect(shopper.get_by_test_id("risk-band")).to_contain_text("中风险")
    expect(shopper.get_by_test_id("risk-band")).to_have_attribute("data-level", "medium")
    check_accessible(shopper)
    text_sizes_ok(shopper)
    shoot(shopper, "shopper-check-in", watched.size)
    shopper.get_by_test_id("name").fill("王小明")
    shopper.get_by_test_id("phone").fill("13912345678")
    shopper.get_by_test_id("register-submit").click()
    expect(shopper.get_by_test_id("ticket-title")).to_contain_text("已登记入店")
    expect(shopper.get_by_test_id("leave-button")).to_be_visible()
    expect(shopper.get_by_test_id("ticket-risk")).to_contain_text("Medium risk")
    check_accessible(shopper)
    shoot(shopper, "shopper-ticket", watched.size)

    # The console sees them inside, against its capacity.
    console.reload()
    expect(console.get_by_test_id("occupancy-text")).to_contain_text("1 / 40")

    # Another visitor, the index case, was there too; five others come and go.
    index = api(server, "POST", "/v1/visitors", None, json={"name": "病例", "phone": "13700000009"})
    index_in = api(server, "POST", "/v1/check-ins", index["token"], json={"code": code})
    shopper_token = shopper.evaluate("() => localStorage.getItem('fangxin.token')")
    walk_world(server, code)

    # The shopper presses "I left": the visit closes by its id.
    shopper.get_by_test_id("leave-button").click()
    expect(shopper.get_by_test_id("ticket-title")).to_contain_text("已离店")
    expect(shopper.get_by_test_id("visit").first).to_have_attribute("data-reason", "manual")
    shoot(shopper, "shopper-left", watched.size)

    # A tracer declares an exposure there while the shopper's page is open: it appears live.
    case = declare_exposure(
        server, officers, index["visitor_id"], venue_id, index_in["checked_in_at"]
    )
    expect(shopper.get_by_test_id("exposure")).to_have_count(1, timeout=15000)
    expect(shopper.get_by_test_id("exposure")).to_contain_text(name)
    expect(shopper.get_by_test_id("exposure")).to_contain_text(ADVICE)
    expect(shopper.get_by_test_id("notice")).to_contain_text("风险提醒")

    # The merchant sends a notice to the last hours' visitors: it appears on the open page.
    merchant_sends_a_notice(console)
    expect(shopper.get_by_test_id("venue-notice")).to_have_count(1, timeout=15000)
    expect(shopper.get_by_test_id("venue-notice")).to_contain_text(NOTICE)
    expect(shopper.get_by_test_id("venue-notice")).to_contain_text(name)
    check_accessible(shopper)
    shoot(shopper, "shopper-exposure", watched.size)

    # The tracer reads the contacts and their details: the shopper's home shows who did.
    tracer_reads_contacts(server, officers["tracer"], case)

    # And on the home page, with the visits.
    shopper.goto(f"{server.base_url}/")
    expect(shopper.get_by_test_id("exposure")).to_have_count(1)
    expect(shopper.get_by_test_id("visit").first).to_contain_text(name)
    expect(shopper.get_by_test_id("venue-notice")).to_have_count(1)
    expect(shopper.get_by_test_id("access-agency").first).to_have_text(AGENCY)
    expect(shopper.get_by_test_id("access-basis").first).to_have_text(LEGAL_BASIS)
    actions = shopper.get_by_test_id("access-action")
    expect(actions.filter(has_text="查看了您的姓名和电话")).to_have_count(1)
    expect(actions.filter(has_text="查看了密接名单")).not_to_have_count(0)
    check_accessible(shopper)
    text_sizes_ok(shopper)
    shoot(shopper, "shopper-home", watched.size)
    assert shopper_token

    # The merchant reads the statistics chart beside its table.
    console.get_by_test_id("stats-bucket").select_option("day")
    console.get_by_test_id("stats-submit").click()
    expect(console.get_by_test_id("chart-visits")).to_have_attribute("data-drawn", "1")
    expect(console.locator('[data-testid="chart-visits"] canvas')).to_have_count(1)
    # The hour still running is never shown (it could be watched filling up): suppressed.
    row = console.get_by_test_id("stats-row").first
    expect(row).to_have_class("suppressed")
    expect(row).to_contain_text("suppressed")
    check_accessible(console)
    text_sizes_ok(console)
    shoot(console, "merchant-console", watched.size)

    # The sixth notice of the day is refused, readably.
    for _ in range(4):
        merchant_sends_a_notice(console)
    console.get_by_test_id("notice-message").fill(NOTICE)
    console.get_by_test_id("notice-submit").click()
    expect(console.get_by_test_id("error-title")).to_contain_text("每天最多 5 条")

    # The merchant edits the venue: the console shows the new details, the codes stay.
    merchant_edits_the_venue(console, f"{name} 二店")
    check_accessible(console)
    text_sizes_ok(console)
    shoot(console, "merchant-edit-venue", watched.size)
    assert decode_poster(server, watched.context, venue_id) == checkin_url

    # The merchant replaces their token: shown once, and it signs the console in again.
    console.once("dialog", lambda dialog: dialog.accept())
    console.get_by_test_id("rotate-token").click()
    expect(console.get_by_test_id("token-once")).to_be_visible()
    check_accessible(console)
    console.get_by_test_id("token-continue").click()
    expect(console.get_by_test_id("signed-in")).to_be_visible()
    expect(console.get_by_test_id("detail-name")).to_have_text(f"{name} 二店")

    # Signing out ends the session: the console asks to sign in again.
    console.get_by_test_id("sign-out").click()
    expect(console.get_by_test_id("signed-out")).to_be_visible()
    assert watched.context.request.get(f"{server.base_url}/v1/venues").status == 401


NOTICE = "3 号桌的顾客 您遗落了一把雨伞 请到前台领取"
AGENCY = "黄浦区疾控"
LEGAL_BASIS = "传染病防治法"


def merchant_sends_a_notice(console: Page) -> None:
    """The notice form's default window (the last three hours) covers the walk's visits."""
    console.get_by_test_id("notice-message").fill(NOTICE)
    console.get_by_test_id("notice-submit").click()
    expect(console.get_by_test_id("notice-result")).to_contain_text("Reached 7 visitors")
    expect(console.get_by_test_id("notice-message")).to_have_value("")


def merchant_edits_the_venue(console: Page, new_name: str) -> None:
    console.get_by_test_id("edit-venue").click()
    expect(console.get_by_test_id("edit-name")).to_have_value(re.compile("老王面馆"))
    console.get_by_test_id("edit-name").fill(new_name)
    console.get_by_test_id("edit-capacity").fill("50")
    check_accessible(console)
    console.get_by_test_id("edit-submit").click()
    expect(console.get_by_test_id("detail-name")).to_have_text(new_name)
    expect(console.get_by_test_id("venue-edit-form")).to_be_hidden()
    expect(console.get_by_test_id("venue-pick")).to_have_text(new_name)
    expect(console.get_by_test_id("occupancy-text")).to_contain_text("/ 50")


def agency_officers(server: Server) -> dict[str, str]:
    """A tracer and a supervisor of an agency over Shanghai."""
    agency = api(
        server, "POST", "/v1/agencies", ADMIN, json={"name": AGENCY, "jurisdiction": ["310000"]}
    )["agency_id"]
    path = f"/v1/agencies/{agency}/officers"
    return {
        role: api(server, "POST", path, ADMIN, json={"name": role, "role": role})["token"]
        for role in ("tracer", "supervisor")
    }


def tracer_reads_contacts(server: Server, tracer: str, case: str) -> None:
    """Everyone who overlapped the index person at all, and each one's name and phone."""
    query = "min_overlap_minutes=0&after_minutes=60"
    contacts = api(server, "GET", f"/v1/cases/{case}/contacts?{query}", tracer)["contacts"]
    assert contacts
    for contact in contacts:
        details = f"/v1/cases/{case}/contacts/{contact['visitor_id']}/details"
        api(server, "POST", details, tracer)


def declare_exposure(
    server: Server, officers: dict[str, str], index_id: str, venue_id: str, since: str
) -> str:
    tracer, supervisor = officers["tracer"], officers["supervisor"]
    now = datetime.now(UTC)
    case = api(
        server,
        "POST",
        "/v1/cases",
        tracer,
        json={
            "index": {"visitor_id": index_id},
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": now.isoformat(),
            "legal_basis": LEGAL_BASIS,
        },
    )["case_id"]
    api(
        server,
        "POST",
        f"/v1/cases/{case}/approval",
        supervisor,
        json={"approve": True, "reason": "ok"},
    )
    api(
        server,
        "POST",
        "/v1/exposures",
        tracer,
        json={
            "case_id": case,
            "venue_id": venue_id,
            "from": since,
            "to": now.isoformat(),
            "advice": ADVICE,
        },
    )
    return case


def test_every_page_sends_a_csp_without_inline_script(server: Server) -> None:
    with httpx.Client(base_url=server.base_url) as anyone:
        for path in (
            "/",
            "/merchant",
            "/console",
            f"/merchant/posters/{uuid.uuid4()}",
            "/c/forged",
        ):
            answer = anyone.get(path)
            assert answer.headers["content-type"].startswith("text/html"), path
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert "<script>" not in answer.text
