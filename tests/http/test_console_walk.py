"""The officers' console walked end to end in headless chromium, at a desktop and a tablet
size: the admin makes the accounts, a tracer opens a case, a supervisor approves it, the tracer
works it and closes it, an auditor checks the trail, the admin replaces a token. axe-core on
every page; screenshots into docs/screenshots/console-*.png."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.http.browsing import Watched, api, check_accessible, shoot, text_sizes_ok
from tests.live import Server, running_server

ADMIN = "console-admin-token-" + "y" * 24
ADVICE = "请居家观察 14 天 如有发热请就医"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("console") / "data", FANGXIN_ADMIN_TOKEN=ADMIN
    ) as running:
        yield running


class Desk:
    """One browser context a person, each with its own session cookie, at one size."""

    def __init__(self, browser: Browser, size: str) -> None:
        self.browser = browser
        self.size = size
        self.people: list[Watched] = []

    def person(self) -> Watched:
        made = Watched(self.browser, self.size)
        self.people.append(made)
        return made


@pytest.fixture(params=["desktop", "tablet"])
def desk(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Desk]:
    made = Desk(browser, request.param)
    try:
        yield made
    finally:
        for person in made.people:
            person.context.close()
    assert [p for person in made.people for p in person.problems] == []


def phone() -> str:
    return f"139{random.randrange(10**8):08d}"


def a_venue_with_a_case(server: Server) -> dict[str, Any]:
    """A venue in 黄浦区 where the index person and a contact were at the same time."""
    merchant = api(
        server, "POST", "/v1/merchants", None, json={"name": "M", "contact_phone": phone()}
    )
    venue = api(
        server,
        "POST",
        "/v1/venues",
        merchant["token"],
        json={
            "name": "老王面馆",
            "address": "南京东路 1 号",
            "region": "310101",
            "category": "restaurant",
        },
    )
    index_phone = phone()
    index = api(server, "POST", "/v1/visitors", None, json={"name": "病例", "phone": index_phone})
    contact = api(server, "POST", "/v1/visitors", None, json={"name": "李四", "phone": phone()})
    for token in (index["token"], contact["token"]):
        api(server, "POST", "/v1/check-ins", token, json={"code": venue["code"]})
    # The index person leaves; the contact is still there when the exposure is declared.
    api(server, "POST", "/v1/check-outs", index["token"], json={"code": venue["code"]})
    return {"phone": index_phone, "contact": contact, "venue": venue}


def sign_in(watched: Watched, server: Server, token: str, shot: str | None = None) -> Page:
    page = watched.page()
    page.goto(f"{server.base_url}/console")
    expect(page.get_by_test_id("signed-out")).to_be_visible()
    if shot:
        check_accessible(page)
        text_sizes_ok(page)
        shoot(page, shot, watched.size)
    page.get_by_test_id("signin-token").fill(token)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("sign-out")).to_be_visible()
    return page


def page_ok(page: Page, name: str, size: str) -> None:
    check_accessible(page)
    text_sizes_ok(page)
    shoot(page, f"console-{name}", size)


def new_token_shown(page: Page) -> str:
    expect(page.get_by_test_id("token-once")).to_be_visible()
    token = page.get_by_test_id("token-value").inner_text()
    assert len(token) >= 20
    page.get_by_test_id("token-done").click()
    expect(page.get_by_test_id("token-once")).to_be_hidden()
    return token


def admin_makes_the_accounts(watched: Watched, server: Server) -> tuple[Page, dict[str, str]]:
    admin = sign_in(watched, server, ADMIN, shot="console-sign-in")
    expect(admin.get_by_test_id("role")).to_contain_text("Admin")
    admin.get_by_test_id("new-agency").click()
    admin.get_by_test_id("agency-name").fill(f"黄浦区疾控 {watched.size}")
    expect(admin.locator('[data-testid="jur-province"] option[value="310000"]')).to_be_attached()
    admin.get_by_test_id("jur-province").select_option("310000")
    expect(admin.locator('[data-testid="jur-city"] option[value="310100"]')).to_be_attached()
    admin.get_by_test_id("jur-city").select_option("310100")
    expect(admin.locator('[data-testid="jur-county"] option[value="310101"]')).to_be_attached()
    admin.get_by_test_id("jur-county").select_option("310101")
    admin.get_by_test_id("jur-add").click()
    expect(admin.get_by_test_id("jur-chip")).to_contain_text("黄浦区")
    page_ok(admin, "admin-new-agency", watched.size)
    admin.get_by_test_id("agency-submit").click()
    expect(admin.get_by_test_id("agency-jurisdiction")).to_contain_text("黄浦区")
    tokens = {}
    for name, role in (("张流调", "tracer"), ("王审批", "supervisor")):
        admin.get_by_test_id("officer-name").fill(name)
        admin.get_by_test_id("officer-role").select_option(role)
        admin.get_by_test_id("officer-submit").click()
        tokens[role] = new_token_shown(admin)
    admin.get_by_test_id("auditor-name").fill(f"赵审计 {watched.size}")
    admin.get_by_test_id("auditor-submit").click()
    tokens["auditor"] = new_token_shown(admin)
    expect(admin.get_by_test_id("officer-row")).to_have_count(2)
    page_ok(admin, "admin", watched.size)
    # The admin's session reads no case data.
    assert watched.context.request.get(f"{server.base_url}/v1/cases").status == 403
    return admin, tokens


def tracer_opens_a_case(watched: Watched, server: Server, token: str, index_phone: str) -> Page:
    tracer = sign_in(watched, server, token)
    expect(tracer.get_by_test_id("tracer-view")).to_be_visible()
    tracer.get_by_test_id("new-case").click()
    tracer.get_by_test_id("case-index").fill(index_phone)
    tracer.get_by_test_id("case-legal-basis").fill("《传染病防治法》第十二条 确诊病例流调")
    page_ok(tracer, "tracer-new-case", watched.size)
    tracer.get_by_test_id("case-submit").click()
    expect(tracer.get_by_test_id("case-status")).to_contain_text("Pending")
    expect(tracer.get_by_test_id("case-pick")).to_have_count(1)
    return tracer


def supervisor_approves(watched: Watched, server: Server, token: str) -> None:
    supervisor = sign_in(watched, server, token)
    item = supervisor.get_by_test_id("queue-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("传染病防治法")
    expect(item).to_contain_text("手机号")
    page_ok(supervisor, "supervisor-queue", watched.size)
    item.get_by_test_id("decision-reason").fill("依据充分")
    item.get_by_test_id("approve").click()
    expect(supervisor.get_by_test_id("queue-empty")).to_be_visible()
    supervisor_sets_a_risk_level(supervisor, watched.size)
    supervisor.close()


def supervisor_sets_a_risk_level(supervisor: Page, size: str) -> None:
    """黄浦区 goes to medium, then high: the history shows both, newest first."""
    expect(supervisor.get_by_test_id("risk-view")).to_be_visible()
    expect(
        supervisor.locator('[data-testid="risk-province"] option[value="310000"]')
    ).to_be_attached()
    supervisor.get_by_test_id("risk-province").select_option("310000")
    # The province lies outside the agency's jurisdiction: its history is not shown.
    expect(supervisor.get_by_test_id("risk-outside")).to_be_visible()
    expect(supervisor.locator('[data-testid="risk-city"] option[value="310100"]')).to_be_attached()
    supervisor.get_by_test_id("risk-city").select_option("310100")
    expect(
        supervisor.locator('[data-testid="risk-county"] option[value="310101"]')
    ).to_be_attached()
    supervisor.get_by_test_id("risk-county").select_option("310101")
    expect(supervisor.get_by_test_id("risk-region-name")).to_contain_text("黄浦区")
    rows = supervisor.get_by_test_id("risk-row")
    # The server is shared by both sizes: the first walk finds no history, the second two.
    before = rows.count()
    expect(supervisor.get_by_test_id("risk-no-history")).to_be_visible(visible=before == 0)
    for level, note in (("medium", "一周内 2 例"), ("high", f"聚集性疫情 {size}")):
        supervisor.get_by_test_id(f"risk-{level}").check()
        supervisor.get_by_test_id("risk-note").fill(note)
        supervisor.get_by_test_id("risk-submit").click()
        expect(supervisor.get_by_test_id("risk-current")).to_have_attribute("data-level", level)
    expect(rows).to_have_count(before + 2)
    expect(rows.first).to_contain_text("高 High")
    expect(rows.first).to_contain_text(f"聚集性疫情 {size}")
    expect(rows.nth(1)).to_contain_text("中 Medium")
    supervisor.get_by_test_id("risk-view").scroll_into_view_if_needed()
    page_ok(supervisor, "supervisor-risk", size)


def tracer_works_the_case(
    watched: Watched, server: Server, tracer: Page, world: dict[str, Any]
) -> str:
    tracer.reload()
    tracer.get_by_test_id("case-pick").first.click()
    expect(tracer.get_by_test_id("case-status")).to_contain_text("Approved")
    visit = tracer.get_by_test_id("visit")
    expect(visit).to_have_count(1)
    expect(visit).to_contain_text("老王面馆")
    expect(visit).to_contain_text("黄浦区")
    # Times are Beijing time, to the second.
    expect(visit.locator(".stop-when")).to_have_text(
        re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} — ")
    )
    # The rule's parameters change the call list: the overlap was seconds, not 15 minutes.
    expect(tracer.get_by_test_id("no-contacts")).to_be_visible()
    tracer.get_by_test_id("rule-min-overlap").fill("0")
    tracer.get_by_test_id("rule-submit").click()
    contact = tracer.get_by_test_id("contact")
    expect(contact).to_have_count(1)
    expect(contact).to_contain_text("老王面馆")
    contact.get_by_test_id("reveal").click()
    expect(contact.get_by_test_id("contact-name")).to_have_text("李四")
    page_ok(tracer, "tracer-case", watched.size)

    # The call list exported with the rule shown, in Beijing time, without names.
    with tracer.expect_download() as download:
        tracer.get_by_test_id("export-json").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert exported["tz"] == "Asia/Shanghai"
    assert exported["rule"]["min_overlap_minutes"] == 0
    assert [c["visitor_id"] for c in exported["contacts"]] == [world["contact"]["visitor_id"]]
    assert exported["contacts"][0]["first_overlap"].endswith("+08:00")
    assert "name" not in exported["contacts"][0]
    with tracer.expect_download() as download:
        tracer.get_by_test_id("export-csv").click()
    assert "老王面馆" in Path(download.value.path()).read_text(encoding="utf-8")

    # An exposure from the visit: venue and window filled in, advice required.
    tracer.get_by_test_id("declare-here").click()
    expect(tracer.get_by_test_id("exposure-venue")).to_contain_text("老王面馆")
    assert tracer.get_by_test_id("exposure-from").input_value()
    tracer.get_by_test_id("exposure-submit").click()
    expect(tracer.get_by_test_id("error")).to_be_visible()
    tracer.get_by_test_id("exposure-advice").fill(ADVICE)
    page_ok(tracer, "tracer-exposure", watched.size)
    tracer.get_by_test_id("exposure-submit").click()
    expect(tracer.get_by_test_id("notice")).to_contain_text("1 people alerted")
    mine = api(server, "GET", "/v1/me/exposures", world["contact"]["token"])
    assert [e["advice"] for e in mine["exposures"]] == [ADVICE]

    # Closing the case: every later read answers 409.
    case_id = tracer.get_by_test_id("case-pick").first.get_attribute("data-case-id")
    assert case_id
    tracer.get_by_test_id("close-reason").fill("密接均已通知")
    tracer.get_by_test_id("close-submit").click()
    expect(tracer.get_by_test_id("case-status")).to_contain_text("Closed")
    expect(tracer.get_by_test_id("case-readable")).to_be_hidden()
    read = watched.context.request.get(f"{server.base_url}/v1/cases/{case_id}/trajectory")
    assert read.status == 409
    page_ok(tracer, "tracer-closed", watched.size)
    return case_id


def auditor_checks_the_trail(watched: Watched, server: Server, token: str, case_id: str) -> None:
    auditor = sign_in(watched, server, token)
    expect(auditor.get_by_test_id("audit-row").first).to_be_visible()
    auditor.get_by_test_id("checkpoint-save").click()
    expect(auditor.get_by_test_id("checkpoint-result")).to_have_attribute("data-valid", "true")
    assert auditor.get_by_test_id("checkpoint-value").input_value()
    auditor.get_by_test_id("filter-case").fill(case_id)
    auditor.get_by_test_id("filter-submit").click()
    rows = auditor.get_by_test_id("audit-row")
    actions = set(rows.evaluate_all("rows => rows.map(r => r.dataset.action)"))
    assert {
        "open case",
        "approve case",
        "read trajectory",
        "read contacts",
        "reveal contact details",
        "export",
        "declare exposure",
        "close case",
    } <= actions, actions
    auditor.get_by_test_id("filter-action").select_option("reveal contact details")
    expect(rows).to_have_count(1)
    auditor.get_by_test_id("verify").click()
    expect(auditor.get_by_test_id("verify-result")).to_have_attribute("data-valid", "true")
    auditor.get_by_test_id("checkpoint-check").click()
    expect(auditor.get_by_test_id("checkpoint-result")).to_contain_text("Matches")
    page_ok(auditor, "auditor", watched.size)
    auditor.close()


@pytest.mark.browser
def test_a_case_walks_through_the_console(server: Server, desk: Desk) -> None:
    world = a_venue_with_a_case(server)
    admin, tokens = admin_makes_the_accounts(desk.person(), server)
    tracer_desk = desk.person()
    tracer = tracer_opens_a_case(tracer_desk, server, tokens["tracer"], world["phone"])
    supervisor_approves(desk.person(), server, tokens["supervisor"])
    case_id = tracer_works_the_case(tracer_desk, server, tracer, world)
    auditor_checks_the_trail(desk.person(), server, tokens["auditor"], case_id)

    # The admin replaces the tracer's token: the old one answers 401 at once.
    admin.reload()
    admin.get_by_test_id("agency-pick").filter(has_text=desk.size).click()
    row = admin.get_by_test_id("officer-row").filter(has_text="张流调")
    row.get_by_test_id("rotate-token").click()
    new = new_token_shown(admin)
    with server.client(tokens["tracer"]) as old:
        assert old.get("/v1/cases").status_code == 401
    with server.client(new) as fresh:
        assert fresh.get("/v1/cases").status_code == 200
    # And the tracer's session, made with the old token, has ended too.
    assert tracer_desk.context.request.get(f"{server.base_url}/v1/cases").status == 401
