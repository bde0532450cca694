"""Who read my data: a visitor sees each agency read of their own data, from the audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infrastructure.services import Services
from tests.conftest import MovableClock, World, bearer


def accesses_of(world: World, visitor: dict[str, Any]) -> list[dict[str, Any]]:
    response = world.client.get("/v1/me/accesses", headers=bearer(visitor["token"]))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["accesses"]
    return found


def test_the_index_person_and_a_listed_contact_see_the_reads_that_concerned_them(
    world: World, clock: MovableClock
) -> None:
    agency = world.agency(["110100"], name="朝阳区疾控中心")
    tracer, supervisor = world.officer(agency, "tracer"), world.officer(agency, "supervisor")
    venue = world.venue(world.merchant())
    index = world.visitor(phone="+8613911112222")
    contact, stranger = world.visitor(), world.visitor()
    start = clock.now()
    world.check_in(index, venue)
    world.check_in(contact, venue)
    clock.advance(timedelta(minutes=70))
    case_id = world.approved_case(
        tracer, supervisor, "+8613911112222", start - timedelta(hours=1), start + timedelta(hours=1)
    )
    before = accesses_of(world, index)
    for path in ("trajectory", "contacts"):
        read = world.client.get(f"/v1/cases/{case_id}/{path}", headers=bearer(tracer["token"]))
        assert read.status_code == 200, read.text

    assert before == []
    seen = accesses_of(world, index)
    assert [(a["agency"], a["action"], a["legal_basis"]) for a in seen] == [
        ("朝阳区疾控中心", "read trajectory", "confirmed by lab"),
        ("朝阳区疾控中心", "read contacts", "confirmed by lab"),
    ]
    assert [a["action"] for a in accesses_of(world, contact)] == ["read contacts"]
    assert accesses_of(world, stranger) == []

    details = world.client.post(
        f"/v1/cases/{case_id}/contacts/{contact['visitor_id']}/details",
        headers=bearer(tracer["token"]),
    )
    assert details.status_code == 200, details.text
    assert [a["action"] for a in accesses_of(world, contact)] == [
        "read contacts",
        "reveal contact details",
    ]
    assert len(accesses_of(world, index)) == 2


def test_a_read_that_is_not_on_the_audit_trail_is_not_shown(
    world: World, clock: MovableClock, services: Services
) -> None:
    agency = world.agency(["110100"])
    tracer, supervisor = world.officer(agency, "tracer"), world.officer(agency, "supervisor")
    venue = world.venue(world.merchant())
    index = world.visitor(phone="+8613911113333")
    world.check_in(index, venue)
    start = clock.now()
    clock.advance(timedelta(minutes=70))
    case_id = world.approved_case(
        tracer, supervisor, "+8613911113333", start - timedelta(hours=1), start + timedelta(hours=1)
    )
    world.client.get(f"/v1/cases/{case_id}/trajectory", headers=bearer(tracer["token"]))
    assert len(accesses_of(world, index)) == 1

    original = services.outreach.accesses.audit
    services.outreach.accesses.audit = _Forgetful(original)  # type: ignore[assignment]
    try:
        assert accesses_of(world, index) == []
    finally:
        services.outreach.accesses.audit = original


class _Forgetful:
    """An audit trail that has nothing on record."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def has(self, ref: str) -> bool:
        return False
