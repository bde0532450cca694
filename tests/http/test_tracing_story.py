"""The tracing story over HTTP, from check-ins in two regions to a verified audit trail."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from infrastructure.settings import Settings
from tests.conftest import MovableClock, World, bearer, tamper_audit


def leave(world: World, visitor: dict[str, Any], venue: dict[str, Any]) -> None:
    response = world.client.post(
        "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(visitor["token"])
    )
    assert response.status_code == 200, response.text


def test_a_case_from_check_ins_to_a_verified_audit_trail(
    world: World, clock: MovableClock, data_dir: Path, settings: Settings
) -> None:
    # Given two agencies, their officers, and venues in two regions.
    beijing = world.agency(["110100"], "Beijing Health")
    shanghai = world.agency(["310100"], "Shanghai Health")
    tracer, supervisor = world.officer(beijing, "tracer"), world.officer(beijing, "supervisor")
    other_tracer = world.officer(shanghai, "tracer")
    other_supervisor = world.officer(shanghai, "supervisor")
    auditor = world.auditor()
    merchant = world.merchant()
    noodles = world.venue(merchant, name="老王面馆", region="110105")
    market = world.venue(merchant, name='=HYPERLINK("x")', region="110108")
    mall = world.venue(merchant, name="Bund Mall", region="310101")

    index = world.visitor(name="病例甲", phone="+8613900000001")
    friend = world.visitor(name="朋友乙", phone="+8613900000002", dependents=["小宝"])
    later = world.visitor(name="后来丙", phone="+8613900000003")
    shopper = world.visitor(name="上海丁", phone="+8613900000004")
    early = world.visitor(name="早走戊", phone="+8613900000005")
    start = clock.now()

    # When they come and go.
    world.check_in(early, noodles)
    clock.advance(timedelta(minutes=10))
    leave(world, early, noodles)
    clock.advance(timedelta(minutes=60))  # early left 60 min before the index person came
    world.check_in(index, noodles)
    world.check_in(friend, noodles, party=["小宝"])
    clock.advance(timedelta(minutes=40))
    leave(world, index, noodles)
    clock.advance(timedelta(minutes=20))
    leave(world, friend, noodles)
    clock.advance(timedelta(minutes=10))
    world.check_in(friend, market)
    world.check_in(later, market)
    clock.advance(timedelta(minutes=30))
    leave(world, friend, market)
    leave(world, later, market)
    world.check_in(index, mall)
    world.check_in(shopper, mall)
    clock.advance(timedelta(minutes=45))
    leave(world, index, mall)
    leave(world, shopper, mall)

    # A tracer opens a case by phone; it stays closed until a second person approves it.
    window = {"from": (start - timedelta(hours=1)).isoformat(), "to": clock.now().isoformat()}
    opened = world.client.post(
        "/v1/cases",
        json={
            "index": {"phone": "139 0000 0001"},
            **window,
            "legal_basis": "PRC Law on Infectious Diseases art. 12",
        },
        headers=bearer(tracer["token"]),
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert opened.json()["status"] == "pending"
    cases = f"/v1/cases/{case_id}"
    for path in ("/trajectory", "/contacts", "/export?format=csv"):
        pending = world.client.get(cases + path, headers=bearer(tracer["token"]))
        assert pending.status_code == 409, path
    assert world.client.get(cases, headers=bearer(other_tracer["token"])).status_code == 404
    refused = world.client.post(
        cases + "/approval", json={"approve": True}, headers=bearer(other_supervisor["token"])
    )
    assert refused.status_code == 404
    self_approval = world.client.post(
        cases + "/approval", json={"approve": True}, headers=bearer(tracer["token"])
    )
    assert self_approval.status_code == 403
    approved = world.client.post(
        cases + "/approval",
        json={"approve": True, "reason": "lab confirmed"},
        headers=bearer(supervisor["token"]),
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == supervisor["officer_id"]

    # Then the trajectory holds the Beijing visit; the Shanghai one is only counted.
    trajectory = world.client.get(cases + "/trajectory", headers=bearer(tracer["token"])).json()
    assert [v["venue"]["name"] for v in trajectory["visits"]] == ["老王面馆"]
    assert trajectory["visits"][0]["venue"]["region_name"] == "朝阳区"
    assert trajectory["visits"][0]["checkout_reason"] == "payment"
    assert trajectory["outside_jurisdiction"] == 1

    # Contacts: the friend and the child (depth 1), the later shopper (depth 2); not the
    # early leaver, not the Shanghai shopper (outside the jurisdiction).
    depth1 = world.client.get(cases + "/contacts", headers=bearer(supervisor["token"])).json()
    contacts1 = {c["visitor_id"]: c for c in depth1["contacts"]}
    friend_visits = world.visits(friend)
    child_id = next(v for v in friend_visits if v["person"] == "小宝")["visit_id"]
    assert friend["visitor_id"] in contacts1
    assert len(contacts1) == 2
    assert all(c["depth"] == 1 for c in contacts1.values())
    assert (
        contacts1[friend["visitor_id"]]["exposures"][0]["overlap_seconds"] == 60 * 60
    )  # index stay + 30 min of lingering air
    assert contacts1[friend["visitor_id"]]["exposures"][0]["venue_name"] == "老王面馆"
    assert child_id not in contacts1  # visit ids are not person ids
    depth2 = world.client.get(cases + "/contacts?depth=2", headers=bearer(tracer["token"])).json()[
        "contacts"
    ]
    by_depth = {c["visitor_id"]: c["depth"] for c in depth2}
    assert by_depth[later["visitor_id"]] == 2
    assert shopper["visitor_id"] not in by_depth
    assert early["visitor_id"] not in by_depth
    assert index["visitor_id"] not in by_depth
    narrow = world.client.get(
        cases + "/contacts?after_minutes=0&min_overlap_minutes=41", headers=bearer(tracer["token"])
    ).json()
    assert narrow["contacts"] == []

    # Details decrypt name and phone of listed contacts only; the child is reached via the parent.
    details = world.client.post(
        f"{cases}/contacts/{friend['visitor_id']}/details", headers=bearer(tracer["token"])
    )
    assert details.json() == {"name": "朋友乙", "phone": "+8613900000002"}
    child = next(v for v in contacts1 if v != friend["visitor_id"])
    child_details = world.client.post(
        f"{cases}/contacts/{child}/details", headers=bearer(tracer["token"])
    )
    assert child_details.json() == {"name": "小宝", "phone": "+8613900000002"}
    stranger = world.client.post(
        f"{cases}/contacts/{shopper['visitor_id']}/details", headers=bearer(tracer["token"])
    )
    assert stranger.status_code == 404

    # The export opens as a table and no cell starts a formula.
    exported = world.client.get(cases + "/export?format=csv", headers=bearer(tracer["token"]))
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][0] == "section"
    assert {r[0] for r in rows[1:]} == {"trajectory", "contact"}
    # A call list: one row per contact, before the trajectory.
    assert [r[0] for r in rows[1:3]] == ["contact", "contact"]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)
    as_json = world.client.get(cases + "/export?format=json", headers=bearer(tracer["token"]))
    assert len(as_json.json()["contacts"]) == 2

    # An exposure at the noodle shop reaches everyone who was there then.
    exposure = world.client.post(
        "/v1/exposures",
        json={
            "case_id": case_id,
            "venue_id": noodles["venue_id"],
            "from": (start + timedelta(minutes=70)).isoformat(),
            "to": (start + timedelta(minutes=110)).isoformat(),
            "advice": "请自我健康监测 14 天",
        },
        headers=bearer(tracer["token"]),
    )
    assert exposure.status_code == 201, exposure.text
    assert exposure.json()["notified"] == 2  # the friend and the child; never the index person
    seen = world.client.get("/v1/me/exposures", headers=bearer(friend["token"])).json()
    assert [e["venue"]["name"] for e in seen["exposures"]] == ["老王面馆"]
    assert seen["exposures"][0]["advice"] == "请自我健康监测 14 天"
    unseen = world.client.get("/v1/me/exposures", headers=bearer(later["token"])).json()
    assert unseen["exposures"] == []

    # An erased contact is gone for good.
    world.client.delete("/v1/me", headers=bearer(friend["token"]))
    gone = world.client.post(
        f"{cases}/contacts/{friend['visitor_id']}/details", headers=bearer(tracer["token"])
    )
    assert gone.status_code == 410
    assert "朋友乙" not in gone.text

    # The auditor sees every admin action and every access, and the chain verifies.
    entries = world.client.get("/v1/audit", headers=bearer(auditor["token"])).json()["entries"]
    admin = [e["action"] for e in entries if e["actor"] == "platform-admin"]
    assert admin == ["create agency"] * 2 + ["create tracer", "create supervisor"] * 2 + [
        "create auditor"
    ]
    actions = [e["action"] for e in entries if e.get("case_id") == case_id]
    assert actions[:2] == ["open case", "approve case"]
    for expected in (
        "read trajectory",
        "read contacts",
        "reveal contact details",
        "export",
        "declare exposure",
    ):
        assert expected in actions
    assert {e["actor"] for e in entries if e.get("case_id") == case_id} == {
        tracer["officer_id"],
        supervisor["officer_id"],
    }
    verification = world.client.get("/v1/audit/verification", headers=bearer(auditor["token"]))
    assert verification.json()["valid"] is True
    assert verification.json()["entries"] == len(entries)

    # A tampered entry is detected.
    tamper_audit(
        settings, data_dir, "UPDATE fangxin_audit SET action = 'nothing' WHERE position = 3"
    )
    tampered = world.client.get("/v1/audit/verification", headers=bearer(auditor["token"])).json()
    assert tampered["valid"] is False
    assert tampered["first_bad_position"] == 3
