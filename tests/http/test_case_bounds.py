"""Cases read the past inside their window only, and stop being readable when closed or expired."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import MovableClock, World, bearer


class Story:
    """An index person and a contact at a noodle shop; hours later, the contact meets a stranger."""

    def __init__(self, world: World, clock: MovableClock) -> None:
        self.world = world
        self.clock = clock
        agency = world.agency(["110000"])
        self.tracer = world.officer(agency, "tracer")
        self.supervisor = world.officer(agency, "supervisor")
        merchant = world.merchant()
        self.noodles = world.venue(merchant, name="Noodles")
        self.tea = world.venue(merchant, name="Tea house")
        self.index = world.visitor(phone="+8613955550001")
        self.contact = world.visitor()
        self.stranger = world.visitor()
        self.t0 = clock.now()
        world.check_in(self.index, self.noodles)
        world.check_in(self.contact, self.noodles)
        clock.advance(timedelta(minutes=40))
        for person in (self.index, self.contact):
            self.leave(person, self.noodles)
        clock.advance(timedelta(hours=3))  # long after the case's window and its buffer
        world.check_in(self.contact, self.tea)
        world.check_in(self.stranger, self.tea)
        clock.advance(timedelta(minutes=40))
        for person in (self.contact, self.stranger):
            self.leave(person, self.tea)
        clock.advance(timedelta(minutes=10))

    def leave(self, person: dict[str, Any], venue: dict[str, Any]) -> None:
        response = self.world.client.post(
            "/v1/check-outs", json={"code": venue["checkout_code"]}, headers=bearer(person["token"])
        )
        assert response.status_code == 200, response.text

    def open(self, start: str, end: str) -> Any:
        return self.world.client.post(
            "/v1/cases",
            json={
                "index": {"phone": "+8613955550001"},
                "from": start,
                "to": end,
                "legal_basis": "confirmed by lab",
            },
            headers=bearer(self.tracer["token"]),
        )

    def approved_case(self) -> str:
        opened = self.open(
            (self.t0 - timedelta(hours=1)).isoformat(), (self.t0 + timedelta(hours=1)).isoformat()
        )
        assert opened.status_code == 201, opened.text
        case_id: str = opened.json()["case_id"]
        approved = self.world.client.post(
            f"/v1/cases/{case_id}/approval",
            json={"approve": True},
            headers=bearer(self.supervisor["token"]),
        )
        assert approved.status_code == 200, approved.text
        return case_id

    def get(self, path: str) -> Any:
        return self.world.client.get(path, headers=bearer(self.tracer["token"]))

    def declare(self, case_id: str, venue: dict[str, Any], start: Any, end: Any) -> Any:
        return self.world.client.post(
            "/v1/exposures",
            json={
                "case_id": case_id,
                "venue_id": venue["venue_id"],
                "from": start.isoformat(),
                "to": end.isoformat(),
                "advice": "watch your health",
            },
            headers=bearer(self.tracer["token"]),
        )


@pytest.fixture
def story(world: World, clock: MovableClock) -> Story:
    return Story(world, clock)


def test_a_case_window_that_reaches_into_the_future_is_refused(story: Story) -> None:
    now = story.clock.now()
    response = story.open(
        (now - timedelta(days=1)).isoformat(), (now + timedelta(days=27)).isoformat()
    )
    assert response.status_code == 400
    assert "future" in response.json()["detail"]


def test_a_case_window_older_than_retention_is_refused(story: Story) -> None:
    now = story.clock.now()
    start, end = now - timedelta(days=29), now - timedelta(days=20)
    response = story.open(start.isoformat(), end.isoformat())
    assert response.status_code == 400
    assert "retention" in response.json()["detail"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00+14:00"),
        ("0001-01-01T00:00:00-12:00", "0001-01-02T00:00:00Z"),
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59-12:00"),
    ],
)
def test_a_case_window_at_the_edge_of_the_calendar_is_a_bad_request(
    story: Story, start: str, end: str
) -> None:
    response = story.open(start, end)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_contacts_of_contacts_are_searched_only_inside_the_case_window(story: Story) -> None:
    case_id = story.approved_case()
    found = story.get(f"/v1/cases/{case_id}/contacts?depth=2").json()["contacts"]
    # The contact met the stranger hours after the window (and its 30-minute buffer) ended.
    assert [c["visitor_id"] for c in found] == [story.contact["visitor_id"]]


def test_an_exposure_at_a_venue_the_index_person_never_visited_is_refused(story: Story) -> None:
    case_id = story.approved_case()
    response = story.declare(case_id, story.tea, story.t0, story.t0 + timedelta(minutes=30))
    assert response.status_code == 409
    assert "notified" not in response.text


def test_an_exposure_outside_the_index_persons_visit_is_refused(story: Story) -> None:
    case_id = story.approved_case()
    later = story.t0 + timedelta(hours=2)
    response = story.declare(case_id, story.noodles, later, later + timedelta(minutes=30))
    assert response.status_code == 409


def test_an_exposure_on_the_trajectory_alerts_the_others_but_not_the_index_person(
    story: Story,
) -> None:
    case_id = story.approved_case()
    response = story.declare(case_id, story.noodles, story.t0, story.t0 + timedelta(minutes=60))
    assert response.status_code == 201, response.text
    assert response.json()["notified"] == 1
    mine = story.world.client.get("/v1/me/exposures", headers=bearer(story.index["token"]))
    theirs = story.world.client.get("/v1/me/exposures", headers=bearer(story.contact["token"]))
    assert len(theirs.json()["exposures"]) == 1
    assert mine.json()["exposures"] == []  # neither counted nor shown on their own visits


READS = ["trajectory", "contacts", "contacts?depth=2", "export?format=json"]


def test_a_closed_case_answers_409_on_every_read(story: Story) -> None:
    case_id = story.approved_case()
    closed = story.world.client.post(
        f"/v1/cases/{case_id}/closure",
        json={"reason": "contained"},
        headers=bearer(story.supervisor["token"]),
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    for read in READS:
        response = story.get(f"/v1/cases/{case_id}/{read}")
        assert response.status_code == 409, read
        assert "Noodles" not in response.text
    details = story.world.client.post(
        f"/v1/cases/{case_id}/contacts/{story.contact['visitor_id']}/details",
        headers=bearer(story.tracer["token"]),
    )
    assert details.status_code == 409
    exposure = story.declare(case_id, story.noodles, story.t0, story.t0 + timedelta(minutes=30))
    assert exposure.status_code == 409
    again = story.world.client.post(
        f"/v1/cases/{case_id}/closure",
        json={"reason": "twice"},
        headers=bearer(story.tracer["token"]),
    )
    assert again.status_code == 409


def test_an_approved_case_expires_fourteen_days_after_approval(story: Story) -> None:
    case_id = story.approved_case()
    assert story.get(f"/v1/cases/{case_id}/trajectory").status_code == 200
    story.clock.advance(timedelta(days=14, minutes=1))
    for read in READS:
        assert story.get(f"/v1/cases/{case_id}/{read}").status_code == 409, read
    shown = story.get(f"/v1/cases/{case_id}").json()
    assert shown["status"] == "expired"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"),
        ("9999-12-31T22:00:00-12:00", "9999-12-31T23:00:00-12:00"),
    ],
)
def test_an_exposure_at_the_edge_of_the_calendar_is_a_bad_request(
    story: Story, start: str, end: str
) -> None:
    case_id = story.approved_case()
    response = story.world.client.post(
        "/v1/exposures",
        json={
            "case_id": case_id,
            "venue_id": story.noodles["venue_id"],
            "from": start,
            "to": end,
            "advice": "watch your health",
        },
        headers=bearer(story.tracer["token"]),
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
