"""Nothing the audit trail guards happens unrecorded: admin actions and reads of case data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient
from msgspec.structs import replace

from domain.ids import derive_id
from domain.people import Officer
from infrastructure.bootstrap import build_services
from infrastructure.services import Services
from infrastructure.settings import Settings
from interface.http.app import create_app
from tests.conftest import ADMIN_TOKEN, MovableClock, World, bearer, tamper_audit


def break_audit_head(settings: Settings, data_dir: Path) -> None:
    """Move the head of the chain so it no longer matches its last entry (as a bad restore)."""
    tamper_audit(settings, data_dir, "UPDATE fangxin_audit_head SET position = position + 7")


def entries(world: World, auditor: dict[str, Any]) -> list[dict[str, Any]]:
    response = world.client.get("/v1/audit", headers=bearer(auditor["token"]))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["entries"]
    return found


def test_every_admin_action_is_in_the_audit_trail_with_the_admin_as_actor(world: World) -> None:
    agency = world.agency(["110000"])
    tracer = world.officer(agency, "tracer")
    supervisor = world.officer(agency, "supervisor")
    auditor = world.auditor()
    made = [(e["action"], e.get("subject", "")) for e in entries(world, auditor)]
    assert [action for action, _ in made] == [
        "create agency",
        "create tracer",
        "create supervisor",
        "create auditor",
    ]
    assert tracer["officer_id"] in made[1][1]
    assert agency in made[1][1]
    assert supervisor["officer_id"] in made[2][1]
    assert auditor["auditor_id"] in made[3][1]
    assert {e["actor"] for e in entries(world, auditor)} == {"platform-admin"}


def test_a_new_admin_token_is_audited_before_it_is_made(settings: Settings) -> None:
    services = build_services(replace(settings, admin_token=""), clock=MovableClock())
    try:
        before = services.audit.entries()
        token = services.admin.issue()  # what `fangxin admin token` does
        assert services.admin.is_admin(token)
        added = services.audit.entries()[len(before) :]
        assert [(e.actor, e.action) for e in added] == [("platform-admin", "issue admin token")]
    finally:
        services.close()


class Approved:
    """An approved case with a listed contact."""

    def __init__(self, world: World, clock: MovableClock) -> None:
        agency = world.agency(["110000"])
        self.tracer = world.officer(agency, "tracer")
        supervisor = world.officer(agency, "supervisor")
        venue = world.venue(world.merchant(), name="Secret Noodles")
        index, self.contact = world.visitor(phone="+8613966660001"), world.visitor()
        start = clock.now()
        world.check_in(index, venue)
        world.check_in(self.contact, venue)
        clock.advance(timedelta(hours=1))
        self.case_id = world.approved_case(
            self.tracer, supervisor, "+8613966660001", start - timedelta(hours=1), clock.now()
        )
        listed = world.client.get(
            f"/v1/cases/{self.case_id}/contacts", headers=bearer(self.tracer["token"])
        )
        assert listed.status_code == 200, listed.text


def test_a_read_of_case_data_answers_503_and_shows_nothing_when_the_audit_refuses(
    world: World, clock: MovableClock, settings: Settings, data_dir: Path
) -> None:
    case = Approved(world, clock)
    break_audit_head(settings, data_dir)
    headers = bearer(case.tracer["token"])
    base = f"/v1/cases/{case.case_id}"
    for response in (
        world.client.get(f"{base}/trajectory", headers=headers),
        world.client.get(f"{base}/contacts?depth=2", headers=headers),
        world.client.get(f"{base}/export?format=csv", headers=headers),
        world.client.post(f"{base}/contacts/{case.contact['visitor_id']}/details", headers=headers),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Secret Noodles" not in response.text
        assert case.contact["visitor_id"] not in response.text


def test_an_admin_action_the_audit_refuses_is_not_done(
    world: World, services: Services, settings: Settings, data_dir: Path
) -> None:
    world.agency(["110000"])
    break_audit_head(settings, data_dir)
    refused = world.client.post(
        "/v1/agencies",
        json={"name": "Unseen agency", "jurisdiction": ["110000"]},
        headers={**bearer(ADMIN_TOKEN), "Idempotency-Key": "unseen-agency"},
    )
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert services.directory.agency(derive_id("agency", "unseen-agency")) is None


@pytest.mark.parametrize("what", ["trajectory", "contacts"])
def test_each_read_of_case_data_adds_one_entry_naming_the_officer(
    world: World, clock: MovableClock, what: str
) -> None:
    case = Approved(world, clock)
    auditor = world.auditor()
    before = len(entries(world, auditor))
    response = world.client.get(
        f"/v1/cases/{case.case_id}/{what}", headers=bearer(case.tracer["token"])
    )
    assert response.status_code == 200
    after = entries(world, auditor)
    assert len(after) == before + 1
    assert after[-1]["actor"] == case.tracer["officer_id"]
    assert after[-1]["case_id"] == case.case_id


def test_a_trail_deleted_with_the_case_events_is_not_rebuilt_and_the_checkpoint_tells(
    settings: Settings, data_dir: Path
) -> None:
    clock = MovableClock()
    first = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=first)) as client:
        world = World(client)
        case = Approved(world, clock)
        auditor = bearer(world.auditor()["token"])
        for _ in range(3):
            world.client.post(
                f"/v1/cases/{case.case_id}/contacts/{case.contact['visitor_id']}/details",
                headers=bearer(case.tracer["token"]),
            )
        checkpoint = client.get("/v1/audit/checkpoint", headers=auditor).json()["checkpoint"]
    first.close()

    # The operator deletes the audit store and restarts: nothing derives it from the log again.
    if settings.uses_postgres:
        tamper_audit(settings, data_dir, "DELETE FROM fangxin_audit")
        tamper_audit(settings, data_dir, "DELETE FROM fangxin_audit_head")
    else:
        (data_dir / "audit.db").unlink()
        for suffix in ("-wal", "-shm"):
            (data_dir / f"audit.db{suffix}").unlink(missing_ok=True)
    second = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=second)) as client:
        found = client.get(
            "/v1/audit/verification", params={"checkpoint": checkpoint}, headers=auditor
        ).json()
    second.close()
    assert found["entries"] == 0  # nothing was derived back from the log
    assert found["checkpoint"]["valid"] is False
    assert found["checkpoint"]["reason"] == "entries-missing"


def test_an_officer_written_into_the_log_without_an_audit_entry_cannot_act(
    world: World, services: Services, clock: MovableClock
) -> None:
    # Someone who can write the log and holds the master key adds a tracer, bypassing the API.
    agency = world.agency(["110000"])
    token, token_hash = services.app.ports.credentials.new_token()
    services.app.create(
        Officer(
            id=uuid.uuid4(),
            agency_id=UUID(agency),
            name="Unrecorded",
            role="tracer",
            token_hash=token_hash,
        )
    )
    world.visitor(phone="+8613977770001")
    now = clock.now()
    opened = world.client.post(
        "/v1/cases",
        json={
            "index": {"phone": "+8613977770001"},
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": now.isoformat(),
            "legal_basis": "no basis",
        },
        headers=bearer(token),
    )
    assert opened.status_code == 403
    assert "audit record" in opened.json()["detail"]


def test_free_text_of_a_case_never_reaches_the_plain_text_audit_trail(
    world: World, clock: MovableClock
) -> None:
    agency = world.agency(["110000"])
    tracer, supervisor = world.officer(agency, "tracer"), world.officer(agency, "supervisor")
    world.visitor(phone="+8613966660002")
    now = clock.now()
    opened = world.client.post(
        "/v1/cases",
        json={
            "index": {"phone": "+8613966660002"},
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": now.isoformat(),
            "legal_basis": "Wang Xiaoming tested positive at Chaoyang Hospital",
        },
        headers=bearer(tracer["token"]),
    )
    case = f"/v1/cases/{opened.json()['case_id']}"
    world.client.post(
        f"{case}/approval",
        json={"approve": True, "reason": "Wang Xiaoming's PCR"},
        headers=bearer(supervisor["token"]),
    )
    world.client.post(
        f"{case}/closure",
        json={"reason": "Wang Xiaoming recovered"},
        headers=bearer(tracer["token"]),
    )
    trail = world.client.get("/v1/audit", headers=bearer(world.auditor()["token"])).text
    assert "open case" in trail
    assert "close case" in trail
    assert "Wang Xiaoming" not in trail
