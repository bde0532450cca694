"""The event store failing under a check-in: a clear 503 problem, nothing changed, no 500."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from infrastructure.services import Services
from tests.conftest import World, bearer


def test_a_failing_store_answers_503_and_changes_nothing(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue, elsewhere = world.venue(world.merchant()), world.venue(world.merchant())
    visitor = world.visitor()
    first = world.check_in(visitor, venue)

    def disk_gone(*_: Any, **__: Any) -> Any:
        raise OperationalError("disk I/O error")

    with monkeypatch.context() as patched:
        recorder = services.store.recorder
        patched.setattr(recorder, "insert_events", disk_gone)
        if hasattr(recorder, "insert_by_writer"):  # PostgreSQL's, which the group commit calls
            patched.setattr(recorder, "insert_by_writer", disk_gone)
        response = world.client.post(
            "/v1/check-ins", json={"code": elsewhere["code"]}, headers=bearer(visitor["token"])
        )
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "/problems/unavailable"
    visits = world.visits(visitor)
    assert [v["visit_id"] for v in visits] == [first["visit_id"]]
    assert visits[0]["checked_out_at"] is None  # the open visit was not superseded
    # The store is back: the same check-in goes through.
    again = world.check_in(visitor, elsewhere)
    assert again["venue"]["venue_id"] == elsewhere["venue_id"]
