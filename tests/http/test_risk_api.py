"""Regional risk levels over HTTP: set by a supervisor of the region, read by anyone, carried
by check-in answers; and a merchant's token rotation."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_TOKEN, World, bearer


def set_level(world: World, token: str, region: str, level: str, note: str = "") -> Any:
    return world.client.put(
        f"/v1/regions/{region}/risk", json={"level": level, "note": note}, headers=bearer(token)
    )


def test_a_supervisor_sets_a_level_that_anyone_reads_and_counties_inherit(world: World) -> None:
    supervisor = world.officer(world.agency(["110100"]), "supervisor")
    before = world.client.get("/v1/regions/110105/risk")
    assert before.json() == {
        "region": "110105",
        "name": "朝阳区",
        "level": "low",
        "since": None,
        "set_for": None,
    }

    city = set_level(world, supervisor["token"], "110100", "medium", "两周内 3 例")
    county = world.client.get("/v1/regions/110105/risk").json()
    other_county = world.client.get("/v1/regions/110108/risk").json()
    own = set_level(world, supervisor["token"], "110108", "high")

    assert city.status_code == 200, city.text
    assert county["level"] == "medium"
    assert county["set_for"] == "110100"
    assert county["since"] is not None
    assert other_county["level"] == "medium"
    assert own.json()["level"] == "high"
    assert own.json()["set_for"] == "110108"
    assert world.client.get("/v1/regions/110105/risk").json()["level"] == "medium"
    assert "两周内" not in city.text  # the note stays in the log


def test_only_a_supervisor_of_the_region_sets_its_level(world: World) -> None:
    agency = world.agency(["110105"])
    supervisor = world.officer(agency, "supervisor")
    tracer = world.officer(agency, "tracer")
    outside = set_level(world, supervisor["token"], "110108", "high")
    above = set_level(world, supervisor["token"], "110100", "high")
    by_tracer = set_level(world, tracer["token"], "110105", "high")
    by_admin = set_level(world, ADMIN_TOKEN, "110105", "high")
    assert [r.status_code for r in (outside, above, by_tracer, by_admin)] == [403] * 4
    assert world.client.get("/v1/regions/110105/risk").json()["level"] == "low"


def test_unknown_regions_and_levels_are_refused(world: World) -> None:
    supervisor = world.officer(world.agency(["110000"]), "supervisor")
    assert set_level(world, supervisor["token"], "110199", "high").status_code == 400
    assert set_level(world, supervisor["token"], "11010x", "high").status_code == 400
    assert set_level(world, supervisor["token"], "110105", "extreme").status_code == 400
    unknown = world.client.get("/v1/regions/999999/risk")
    assert unknown.status_code == 400
    assert unknown.json()["type"] == "/problems/unknown-region"


def test_setting_a_level_is_on_the_audit_trail_without_its_note(world: World) -> None:
    supervisor = world.officer(world.agency(["110000"]), "supervisor")
    set_level(world, supervisor["token"], "110105", "high", "secret reasoning 理由")
    auditor = world.auditor()
    trail = world.client.get("/v1/audit", headers=bearer(auditor["token"]))
    assert trail.status_code == 200, trail.text
    entries = [e for e in trail.json()["entries"] if e["action"] == "set risk level"]
    assert len(entries) == 1
    assert entries[0]["actor"] == supervisor["officer_id"]
    assert "secret reasoning" not in trail.text
    assert "理由" not in trail.text


def test_a_check_in_answer_carries_the_venue_region_s_level(world: World) -> None:
    supervisor = world.officer(world.agency(["110000"]), "supervisor")
    venue = world.venue(world.merchant())
    visitor = world.visitor()
    assert world.check_in(visitor, venue)["risk"] == {"level": "low", "since": None}

    set_level(world, supervisor["token"], "110000", "high")
    answer = world.check_in(visitor, venue)

    assert answer["risk"]["level"] == "high"
    assert answer["risk"]["since"] is not None


def test_a_rotated_merchant_token_stops_at_once(world: World) -> None:
    merchant = world.merchant()
    world.venue(merchant)
    rotated = world.client.post(
        "/v1/merchants/me/token-rotations", headers=bearer(merchant["token"])
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["token"]
    assert new != merchant["token"]
    assert world.client.get("/v1/venues", headers=bearer(merchant["token"])).status_code == 401
    venues = world.client.get("/v1/venues", headers=bearer(new))
    assert venues.status_code == 200
    assert len(venues.json()["venues"]) == 1


def test_officers_of_the_region_read_its_history_newest_first(world: World) -> None:
    agency = world.agency(["110100"])
    supervisor = world.officer(agency, "supervisor")
    tracer = world.officer(agency, "tracer")
    set_level(world, supervisor["token"], "110105", "medium", "两周内 3 例")
    set_level(world, supervisor["token"], "110105", "high", "聚集性疫情")

    answer = world.client.get("/v1/regions/110105/risk/history", headers=bearer(tracer["token"]))

    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["region"], found["name"]) == ("110105", "朝阳区")
    history = found["history"]
    assert [(h["level"], h["note"]) for h in history] == [
        ("high", "聚集性疫情"),
        ("medium", "两周内 3 例"),
    ]
    assert {h["by"] for h in history} == {supervisor["officer_id"]}
    assert all("." not in h["at"] for h in history)  # to the second
    assert history[0]["at"] >= history[1]["at"]


def test_another_agency_s_officers_do_not_read_a_region_s_history(world: World) -> None:
    supervisor = world.officer(world.agency(["110100"]), "supervisor")
    outsider = world.officer(world.agency(["120000"], "Tianjin"), "supervisor")
    set_level(world, supervisor["token"], "110105", "high", "理由")

    refused = world.client.get("/v1/regions/110105/risk/history", headers=bearer(outsider["token"]))
    by_admin = world.client.get("/v1/regions/110105/risk/history", headers=bearer(ADMIN_TOKEN))
    unknown = world.client.get(
        "/v1/regions/110199/risk/history", headers=bearer(supervisor["token"])
    )
    empty = world.client.get("/v1/regions/110108/risk/history", headers=bearer(supervisor["token"]))

    assert [refused.status_code, by_admin.status_code, unknown.status_code] == [403, 403, 400]
    assert "理由" not in refused.text
    assert empty.json()["history"] == []
