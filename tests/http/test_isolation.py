"""A merchant sees their own venues only: another merchant's venue is simply not found."""

from __future__ import annotations

import pytest

from tests.conftest import World, bearer


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("GET", "/stats", None),
        ("GET", "/occupancy", None),
        ("GET", "/poster.svg", None),
        ("GET", "/poster.png", None),
        ("GET", "/poster.png?kind=checkout", None),
        ("POST", "/code-rotations", None),
        ("POST", "/assisted-check-ins", {"name": "X", "phone": "+8613800000000"}),
        ("POST", "/check-outs", {"visit_id": "6f1c2a8e-3d0b-4c57-9a51-0e4d2f6b7a10"}),
    ],
)
def test_merchant_b_gets_404_on_merchant_as_venue(
    world: World, method: str, path: str, body: dict[str, str] | None
) -> None:
    owner, other = world.merchant(), world.merchant()
    venue = world.venue(owner)
    response = world.client.request(
        method, f"/v1/venues/{venue['venue_id']}{path}", json=body, headers=bearer(other["token"])
    )
    assert response.status_code == 404
    assert venue["name"] not in response.text
    # The owner's venue is unchanged: the codes still work.
    visitor = world.visitor()
    world.check_in(visitor, venue)


def test_a_merchant_answer_never_names_a_visitor(world: World) -> None:
    merchant = world.merchant()
    venue = world.venue(merchant)
    visitor = world.visitor(name="赵六", phone="+8613811112222")
    visit = world.check_in(visitor, venue)
    for path in ("", "/stats", "/occupancy"):
        text = world.client.get(
            f"/v1/venues/{venue['venue_id']}{path}", headers=bearer(merchant["token"])
        ).text
        assert visitor["visitor_id"] not in text
        assert "赵六" not in text
        assert "13811112222" not in text
    listed = world.client.get("/v1/venues", headers=bearer(merchant["token"])).text
    assert visitor["visitor_id"] not in listed
    assert visit["visit_id"] not in listed
