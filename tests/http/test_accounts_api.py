"""The admin's accounts: lists, token rotations (the old token stops at once), deactivation."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_TOKEN, World, bearer


def as_admin(world: World, method: str, path: str) -> Any:
    return world.client.request(method, path, headers=bearer(ADMIN_TOKEN))


def test_the_admin_lists_agencies_officers_and_auditors_never_a_token(world: World) -> None:
    agency = world.agency(["110105"], "朝阳区疾控中心")
    tracer = world.officer(agency, "tracer")
    supervisor = world.officer(agency, "supervisor")
    auditor = world.auditor()
    agencies = as_admin(world, "GET", "/v1/agencies").json()["agencies"]
    [mine] = [a for a in agencies if a["agency_id"] == agency]
    assert mine["name"] == "朝阳区疾控中心"
    assert mine["jurisdiction"] == [{"region": "110105", "name": "朝阳区"}]
    officers = as_admin(world, "GET", f"/v1/agencies/{agency}/officers").json()["officers"]
    assert [(o["officer_id"], o["role"], o["active"]) for o in officers] == [
        (supervisor["officer_id"], "supervisor", True),
        (tracer["officer_id"], "tracer", True),
    ]
    auditors = as_admin(world, "GET", "/v1/auditors").json()["auditors"]
    assert auditor["auditor_id"] in [a["auditor_id"] for a in auditors]
    listed = str(officers) + str(auditors)
    assert tracer["token"] not in listed
    assert auditor["token"] not in listed
    missing = as_admin(world, "GET", "/v1/agencies/00000000-0000-4000-8000-000000000000/officers")
    assert missing.status_code == 404


def test_a_rotated_token_stops_at_once_and_the_new_one_works(world: World) -> None:
    agency = world.agency(["110000"])
    tracer = world.officer(agency, "tracer")
    auditor = world.auditor()
    rotated = as_admin(world, "POST", f"/v1/officers/{tracer['officer_id']}/token-rotations")
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["token"]
    assert new != tracer["token"]
    assert world.client.get("/v1/cases", headers=bearer(tracer["token"])).status_code == 401
    assert world.client.get("/v1/cases", headers=bearer(new)).status_code == 200
    # An officer or auditor rotates their own token; never someone else's.
    own = world.client.post(
        f"/v1/officers/{tracer['officer_id']}/token-rotations", headers=bearer(new)
    )
    assert own.status_code == 201, own.text
    assert world.client.get("/v1/cases", headers=bearer(new)).status_code == 401
    mine = world.client.post(
        f"/v1/auditors/{auditor['auditor_id']}/token-rotations", headers=bearer(auditor["token"])
    )
    assert mine.status_code == 201, mine.text
    theirs = world.client.post(
        f"/v1/officers/{tracer['officer_id']}/token-rotations", headers=bearer(mine.json()["token"])
    )
    assert theirs.status_code == 403
    entries = world.client.get("/v1/audit", headers=bearer(mine.json()["token"])).json()["entries"]
    rotations = [(e["actor"], e["action"]) for e in entries if "token" in e["action"]]
    assert rotations == [
        ("platform-admin", "rotate officer token"),
        (tracer["officer_id"], "rotate officer token"),
        (auditor["auditor_id"], "rotate auditor token"),
    ]


def test_a_deactivated_officer_is_locked_out_and_stays_in_the_audit(
    world: World, clock: Any
) -> None:
    agency = world.agency(["110000"])
    tracer = world.officer(agency, "tracer")
    auditor = world.auditor()
    assert world.client.get("/v1/cases", headers=bearer(tracer["token"])).status_code == 200
    gone = as_admin(world, "DELETE", f"/v1/officers/{tracer['officer_id']}")
    assert gone.status_code == 204
    assert world.client.get("/v1/cases", headers=bearer(tracer["token"])).status_code == 401
    again = as_admin(world, "DELETE", f"/v1/officers/{tracer['officer_id']}")
    assert again.status_code == 204
    rotate = as_admin(world, "POST", f"/v1/officers/{tracer['officer_id']}/token-rotations")
    assert rotate.status_code == 404
    officers = as_admin(world, "GET", f"/v1/agencies/{agency}/officers").json()["officers"]
    assert [o["active"] for o in officers] == [False]
    closed = as_admin(world, "DELETE", f"/v1/auditors/{auditor['auditor_id']}")
    assert closed.status_code == 204
    assert world.client.get("/v1/audit", headers=bearer(auditor["token"])).status_code == 401
    reader = world.auditor()
    entries = world.client.get("/v1/audit", headers=bearer(reader["token"])).json()["entries"]
    actions = [(e["actor"], e["action"]) for e in entries]
    assert ("platform-admin", "create tracer") in actions
    assert actions.count(("platform-admin", "deactivate officer")) == 1
    assert ("platform-admin", "deactivate auditor") in actions
    # The wrong kind of account, or none, is not found.
    wrong = as_admin(world, "DELETE", f"/v1/auditors/{tracer['officer_id']}")
    assert wrong.status_code == 404
