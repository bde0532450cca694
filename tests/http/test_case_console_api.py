"""The console's API for officers: case lists and queues, call-list exports, exposure advice."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

from tests.conftest import MovableClock, World, bearer

ADVICE = "请自我健康监测 14 天 如有发热请就医"
SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")


class Scene:
    """An index person, a friend forty minutes beside them at a noodle shop, and officers."""

    def __init__(self, world: World, clock: MovableClock) -> None:
        self.world, self.clock = world, clock
        self.agency = world.agency(["110000"])
        self.tracer = world.officer(self.agency, "tracer")
        self.supervisor = world.officer(self.agency, "supervisor")
        merchant = world.merchant()
        self.venue = world.venue(merchant, name="老王面馆")
        self.index = world.visitor(phone="+8613977770001")
        self.friend = world.visitor(name="朋友乙", phone="+8613977770002")
        self.start = clock.now()
        world.check_in(self.index, self.venue)
        world.check_in(self.friend, self.venue)
        clock.advance(timedelta(minutes=40, seconds=30, microseconds=123456))
        for person in (self.index, self.friend):
            out = world.client.post(
                "/v1/check-outs",
                json={"code": self.venue["checkout_code"]},
                headers=bearer(person["token"]),
            )
            assert out.status_code == 200, out.text
        clock.advance(timedelta(minutes=10))

    def case(self) -> str:
        return self.world.approved_case(
            self.tracer,
            self.supervisor,
            "+8613977770001",
            self.start - timedelta(hours=1),
            self.clock.now(),
        )

    def get(self, path: str, who: dict[str, Any]) -> Any:
        return self.world.client.get(path, headers=bearer(who["token"]))


def test_officers_list_their_agencys_cases_and_a_supervisor_has_a_queue(
    world: World, clock: MovableClock
) -> None:
    scene = Scene(world, clock)
    approved = scene.case()
    clock.advance(timedelta(seconds=1))
    opened = world.client.post(
        "/v1/cases",
        json={
            "index": {"phone": "+8613977770001"},
            "from": (scene.start - timedelta(hours=1)).isoformat(),
            "to": clock.now().isoformat(),
            "legal_basis": "传染病防治法 第十二条",
        },
        headers=bearer(scene.tracer["token"]),
    )
    pending = opened.json()["case_id"]
    everything = scene.get("/v1/cases", scene.tracer).json()
    assert [c["case_id"] for c in everything["cases"]] == [pending, approved]
    newest = everything["cases"][0]
    assert newest["status"] == "pending"
    assert newest["legal_basis"] == "传染病防治法 第十二条"
    assert newest["index_by"] == "phone"
    assert newest["opened_by"] == scene.tracer["officer_id"]
    assert "+8613977770001" not in str(everything)
    assert scene.index["visitor_id"] not in str(everything)
    for field in ("from", "to", "opened_at"):
        assert SECONDS.match(newest[field]), newest[field]
    queue = scene.get("/v1/cases?status=pending", scene.supervisor).json()
    assert [c["case_id"] for c in queue["cases"]] == [pending]
    page = scene.get("/v1/cases?limit=1", scene.supervisor).json()
    assert [c["case_id"] for c in page["cases"]] == [pending]
    rest = scene.get(f"/v1/cases?limit=1&cursor={page['cursor']}", scene.supervisor).json()
    assert [c["case_id"] for c in rest["cases"]] == [approved]
    assert rest["cursor"] is None
    # Another agency's officers see none of it; nonsense is refused as bad input.
    other = world.officer(world.agency(["310000"], "Shanghai"), "supervisor")
    assert scene.get("/v1/cases", other).json()["cases"] == []
    for bad in ("status=lost", "limit=0", "limit=201", "cursor=%21%21"):
        refused = scene.get(f"/v1/cases?{bad}", scene.tracer)
        assert refused.status_code == 400, bad
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_an_export_is_a_call_list_in_the_officers_zone(world: World, clock: MovableClock) -> None:
    scene = Scene(world, clock)
    case_id = scene.case()
    base = f"/v1/cases/{case_id}/export"
    plain = scene.get(f"{base}?format=json&tz=Asia/Shanghai", scene.tracer).json()
    [row] = plain["contacts"]
    assert row["visitor_id"] == scene.friend["visitor_id"]
    assert row["depth"] == 1
    assert [v["name"] for v in row["venues"]] == ["老王面馆"]
    assert row["overlap_minutes"] == 40
    assert row["first_overlap"].endswith("+08:00")
    assert SECONDS.match(row["first_overlap"])
    assert SECONDS.match(row["last_overlap"])
    assert "name" not in row
    assert "phone" not in row
    assert plain["tz"] == "Asia/Shanghai"
    assert plain["trajectory"][0]["checked_in_at"].endswith("+08:00")
    # The rule's parameters are those of /contacts: a longer minimum leaves nobody.
    strict = scene.get(f"{base}?format=json&min_overlap_minutes=45", scene.tracer).json()
    assert strict["contacts"] == []
    assert strict["rule"]["min_overlap_minutes"] == 45
    # With details: names and phones, each reveal on the audit record.
    auditor = world.auditor()
    before = len(scene.get("/v1/audit", auditor).json()["entries"])
    detailed = scene.get(f"{base}?format=csv&details=true&tz=Asia/Shanghai", scene.tracer)
    assert detailed.status_code == 200, detailed.text
    rows = list(csv.DictReader(io.StringIO(detailed.content.decode("utf-8-sig"))))
    [call] = [r for r in rows if r["section"] == "contact"]
    # A leading + would start a formula: the cell is neutralised as every other one is.
    assert (call["name"], call["phone"], call["venues"]) == (
        "朋友乙",
        "'+8613977770002",
        "老王面馆",
    )
    assert call["first_overlap"].endswith("+08:00")
    entries = scene.get("/v1/audit", auditor).json()["entries"][before:]
    assert [e["action"] for e in entries] == ["export", "reveal contact details"]
    assert entries[1]["subject"] == scene.friend["visitor_id"]
    unknown = scene.get(f"{base}?tz=Mars/Olympus", scene.tracer)
    assert unknown.status_code == 400
    assert unknown.json()["type"] == "/problems/unknown-time-zone"


def test_an_exposure_carries_advice_to_everyone_but_the_index_person(
    world: World, clock: MovableClock
) -> None:
    scene = Scene(world, clock)
    case_id = scene.case()
    body = {
        "case_id": case_id,
        "venue_id": scene.venue["venue_id"],
        "from": scene.start.isoformat(),
        "to": (scene.start + timedelta(minutes=30)).isoformat(),
    }
    for advice in (None, "", "x" * 501):
        refused = world.client.post(
            "/v1/exposures",
            json=body if advice is None else {**body, "advice": advice},
            headers=bearer(scene.tracer["token"]),
        )
        assert refused.status_code == 400, refused.text
    declared = world.client.post(
        "/v1/exposures", json={**body, "advice": ADVICE}, headers=bearer(scene.tracer["token"])
    )
    assert declared.status_code == 201, declared.text
    assert declared.json()["notified"] == 1
    [seen] = scene.get("/v1/me/exposures", scene.friend).json()["exposures"]
    assert seen["advice"] == ADVICE
    assert SECONDS.match(seen["declared_at"])
    assert scene.get("/v1/me/exposures", scene.index).json()["exposures"] == []
