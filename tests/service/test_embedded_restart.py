"""An embedded restart resumes from the history kept in the data folder: it reads none of the
visits' events again, yet shows the same visits, contacts, statistics and occupancy, applies
nothing twice, and brings back nothing of an erased visitor. (Embedded only: `make unit` runs
tests/service on the embedded deployment; the production suite is tests/http.)"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from infrastructure.bootstrap import build_services
from infrastructure.services import Services
from infrastructure.settings import Settings
from interface import cli
from interface.http.app import create_app
from tests.conftest import MovableClock, World, bearer


def unreadable_visits(data_dir: Path) -> int:
    """Overwrite the ciphertext of every visit event in the log: a start that read one again
    would fail (an altered event is refused), so a start that succeeds read none."""
    with closing(sqlite3.connect(data_dir / "events.db")) as db, db:
        changed = db.execute(
            "UPDATE stored_events SET state = zeroblob(64) WHERE topic LIKE 'domain.visits:%'"
        ).rowcount
    return int(changed)


def history_position(services: Services) -> int:
    assert services.history is not None
    return services.history.history.position()


def log_head(services: Services) -> int:
    return services.store.recorder.max_notification_id() or 0


class Town:
    """A venue with visitors come and gone, a case and its contacts, seen over HTTP."""

    def __init__(self, world: World, clock: MovableClock) -> None:
        self.world, self.clock = world, clock
        beijing = world.agency(["110100"])
        self.tracer = world.officer(beijing, "tracer")
        self.supervisor = world.officer(beijing, "supervisor")
        self.merchant = world.merchant()
        self.venue = world.venue(self.merchant, capacity=10)
        self.index = world.visitor(phone="+8613900000001")
        self.friend = world.visitor(dependents=["小红"])
        self.start = clock.now()
        world.check_in(self.index, self.venue)
        world.check_in(self.friend, self.venue, party=["小红"])
        for _ in range(4):  # statistics show an hour of at least five visitors
            world.check_in(world.visitor(), self.venue)
        clock.advance(timedelta(minutes=40))
        left = world.client.post(
            "/v1/check-outs",
            json={"code": self.venue["checkout_code"]},
            headers=bearer(self.index["token"]),
        )
        assert left.status_code == 200, left.text
        clock.advance(timedelta(hours=1))
        self.case = world.approved_case(
            self.tracer,
            self.supervisor,
            "+8613900000001",
            self.start - timedelta(hours=1),
            clock.now(),
        )

    def seen(self, client: TestClient[Any]) -> dict[str, Any]:
        """Everything the read side shows of the town."""
        venue_path = f"/v1/venues/{self.venue['venue_id']}"
        merchant = bearer(self.merchant["token"])
        window = {
            "bucket": "day",
            "from": (self.start - timedelta(hours=1)).isoformat(),
            "to": (self.start + timedelta(hours=2)).isoformat(),
        }
        contacts = client.get(
            f"/v1/cases/{self.case}/contacts", headers=bearer(self.supervisor["token"])
        )
        assert contacts.status_code == 200, contacts.text
        return {
            "visits": {
                who: client.get("/v1/me/visits", headers=bearer(person["token"])).json()
                for who, person in (("index", self.index), ("friend", self.friend))
            },
            "contacts": sorted(c["visitor_id"] for c in contacts.json()["contacts"]),
            "stats": client.get(f"{venue_path}/stats", params=window, headers=merchant).json(),
            "occupancy": client.get(f"{venue_path}/occupancy", headers=merchant).json(),
        }


def test_a_restart_resumes_from_the_history_and_shows_the_same_visits_contacts_and_stats(
    settings: Settings, data_dir: Path
) -> None:
    clock = MovableClock()
    first = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=first)) as client:
        town = Town(World(client), clock)
        before = town.seen(client)
    first.close()
    assert before["occupancy"] == {"current": 6, "capacity": 10}
    assert before["stats"]["totals"]["check_ins"] == 7
    assert len(before["contacts"]) == 6  # everyone else there: the child too

    assert unreadable_visits(data_dir) >= 8
    second = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=second)) as client:
        assert town.seen(client) == before
        assert history_position(second) == log_head(second)
        # Applied once, whoever applies it next: one more visit is one more.
        newcomer = World(client).visitor()
        World(client).check_in(newcomer, town.venue)
        after = town.seen(client)
        assert after["occupancy"]["current"] == before["occupancy"]["current"] + 1
        assert len(World(client).visits(newcomer)) == 1
        at_venue = second.visits.at_venue(
            UUID(town.venue["venue_id"]), town.start, clock.now() + timedelta(seconds=1)
        )
        assert len({v.visit_id for v in at_venue}) == len(at_venue) == 8
        assert history_position(second) == log_head(second)
    second.close()


def test_the_history_position_survives_restarts_and_nothing_is_applied_twice(
    settings: Settings,
) -> None:
    clock = MovableClock()
    positions = []
    for _ in range(3):
        services = build_services(settings, clock=clock)
        with TestClient(create_app(settings, services=services)) as client:
            world = World(client)
            venue = world.venue(world.merchant())
            visitor = world.visitor()
            world.check_in(visitor, venue)
            assert len(world.visits(visitor)) == 1  # a read of the history catches it up
            assert history_position(services) == log_head(services)
        positions.append(history_position(services))
        services.close()
    services = build_services(settings, clock=clock)
    assert history_position(services) == positions[-1] == log_head(services)
    assert positions == sorted(set(positions))
    # Three visits left open, each once after three restarts, in the hot state and the history.
    due = services.visits.due(clock.now() + timedelta(days=1), 100)
    assert len({v.visit_id for v in due}) == len(due) == 3
    for visit in due:
        assert services.visits.open_of(visit.visitor_id) == [visit]
        day = timedelta(days=1)
        assert services.visits.of_guardian(
            visit.guardian_id, clock.now() - day, clock.now() + day
        ) == [visit]
    services.close()


def test_a_restart_after_erasure_shows_nothing_of_the_erased_visitor(
    settings: Settings, data_dir: Path
) -> None:
    clock = MovableClock()
    first = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=first)) as client:
        town = Town(World(client), clock)
        erased = client.delete("/v1/me", headers=bearer(town.friend["token"]))
        assert erased.status_code in (200, 204), erased.text
        before = town.seen(client)
    first.close()
    # The friend and the child are no contacts any more; their visits are gone.
    assert len(before["contacts"]) == 4
    assert town.friend["visitor_id"] not in before["contacts"]
    assert before["occupancy"]["current"] == 4

    unreadable_visits(data_dir)
    second = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=second)) as client:
        assert town.seen(client) == before
        gone = client.get("/v1/me/visits", headers=bearer(town.friend["token"]))
        assert gone.status_code == 401
    second.close()


def test_fangxin_rebuild_makes_the_history_again_from_the_log(
    settings: Settings,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = MovableClock()
    first = build_services(settings, clock=clock)
    with TestClient(create_app(settings, services=first)) as client:
        town = Town(World(client), clock)
        before = town.seen(client)
    head = log_head(first)
    first.close()
    with closing(sqlite3.connect(data_dir / "history.db")) as db, db:
        db.execute("DELETE FROM visits")  # damaged: only a rebuild from the log brings it back
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(data_dir))

    assert cli.main(["rebuild"]) == 0

    assert f"rebuilt the history from {head:,} events" in capsys.readouterr().out
    second = build_services(settings, clock=clock)
    assert history_position(second) == head
    with TestClient(create_app(settings, services=second)) as client:
        assert town.seen(client) == before
    second.close()
