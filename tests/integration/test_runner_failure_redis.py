"""The elected Redis runner failing on an event, seen from two workers on the real PostgreSQL
and Redis: its thread lives on, every worker's /health answers 503 and takes check-ins, and
once the fault clears the read models catch up and /health is 200 on both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, closing
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from domain.visits import Visit
from infrastructure.bootstrap import build_services
from infrastructure.projections.redis_runner import RedisProjectionRunner
from infrastructure.settings import load_settings
from interface.http.app import create_app
from tests.conftest import World
from tests.projectors import FailingProjector, eventually

pytestmark = pytest.mark.integration


class Workers:
    """Two workers of one deployment: `runner`'s runner holds the lock, `other`'s does not."""

    def __init__(self, stack: ExitStack, production: dict[str, str]) -> None:
        settings = load_settings({}, **production)
        self.runner_services = stack.enter_context(closing(build_services(settings)))
        client = stack.enter_context(
            TestClient(create_app(settings, services=self.runner_services))
        )
        runner = self.runner_services.runner
        assert isinstance(runner, RedisProjectionRunner)
        eventually(lambda: runner.is_leader, "the first worker's runner took the lock")
        other_services = stack.enter_context(closing(build_services(settings)))
        other = stack.enter_context(TestClient(create_app(settings, services=other_services)))
        self.runner, self.other = World(client), World(other)
        self.other_services = other_services


@pytest.fixture
def workers(production: dict[str, str]) -> Iterator[Workers]:
    with ExitStack() as stack:
        yield Workers(stack, production)


def health(world: World, status: int) -> Any:
    def check() -> Any:
        response = world.client.get("/health")
        return response.json() if response.status_code == status else None

    return eventually(check, f"/health answers {status}")


def test_both_workers_report_the_runners_failure_take_check_ins_and_recover(
    workers: Workers,
) -> None:
    venue = workers.runner.venue(workers.runner.merchant())
    visitor, other = workers.runner.visitor(), workers.other.visitor()
    fault = FailingProjector(
        lambda e: isinstance(e, Visit.CheckedIn) and str(e.visitor_id) == visitor["visitor_id"]
    )
    workers.runner_services.runner.add_projector(fault)

    first = workers.runner.check_in(visitor, venue)
    for world in (workers.runner, workers.other):
        answer = health(world, 503)
        assert answer["projection"]["state"] == "failing"
        assert "read_models" in answer["detail"]
    second = workers.other.check_in(other, venue)  # 201 on the worker that does not project
    # Durable, not applied yet to what is hot (the history, a projection of its own, may show it).
    other_id = UUID(other["visitor_id"])
    assert workers.other_services.app.ports.visits.open_of(other_id) == []
    assert workers.runner_services.runner.state().state == "failing"  # alive, holding the lock

    fault.heal()

    for world in (workers.runner, workers.other):
        assert health(world, 200)["projection"] == {"name": "read_models", "state": "running"}
    assert [v["visit_id"] for v in workers.other.visits(visitor)] == [first["visit_id"]]
    assert [v["visit_id"] for v in workers.other.visits(other)] == [second["visit_id"]]
