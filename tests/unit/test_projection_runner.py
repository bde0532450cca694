"""The embedded runner survives a projector that fails on an event, and resumes exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from infrastructure.projections.health import Failures
from infrastructure.projections.runner import ProjectionRunner
from tests.projectors import FailingProjector, eventually


class Kept:
    """A projector that keeps every event it is given, as read models do."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def apply(self, event: Any) -> None:
        self.events.append(event)


@pytest.fixture
def app() -> Application[Any]:
    app: Application[Any] = Application()
    app.save(*[Aggregate() for _ in range(5)])
    return app


@pytest.fixture
def kept() -> Kept:
    return Kept()


@pytest.fixture
def fault(app: Application[Any]) -> FailingProjector:
    third = app.recorder.select_notifications(start=None, limit=5)[2].originator_id
    return FailingProjector(lambda event: event.originator_id == third)


@pytest.fixture
def runner(
    app: Application[Any], kept: Kept, fault: FailingProjector
) -> Iterator[ProjectionRunner]:
    # Kept comes first: it applies the third event before the fault refuses it.
    runner = ProjectionRunner(
        app.recorder,
        app.mapper,
        [kept, fault],
        poll_interval=0.01,
        failures=Failures(first_retry=0.01, longest_retry=0.05),
    )
    runner.start()
    yield runner
    runner.stop()


def test_a_runner_failing_on_an_event_keeps_its_thread_and_says_it_fails(
    runner: ProjectionRunner, fault: FailingProjector
) -> None:
    eventually(lambda: fault.failures >= 3, "the runner tried the event again and again")

    state = runner.state()
    assert (state.state, state.error) == ("failing", "LookupError")
    assert state.since is not None
    assert runner.position == 2


def test_after_the_fault_clears_every_projector_has_every_event_exactly_once(
    runner: ProjectionRunner, app: Application[Any], kept: Kept, fault: FailingProjector
) -> None:
    eventually(lambda: fault.failures >= 3, "the runner tried the event again and again")

    fault.heal()

    eventually(lambda: runner.state().state == "running", "the runner recovered")
    logged = [n.originator_id for n in app.recorder.select_notifications(start=None, limit=9)]
    assert runner.position == 5
    assert [e.originator_id for e in kept.events] == logged
    assert [e.originator_id for e in fault.applied] == logged


def test_a_writer_is_answered_while_the_runner_fails(
    runner: ProjectionRunner, app: Application[Any], fault: FailingProjector
) -> None:
    eventually(lambda: fault.failures >= 1, "the runner failed")
    recordings = app.save(Aggregate())

    runner.written(recordings)  # returns: the events are durable, applied on recovery

    assert not runner.has_applied(recordings[0].notification.id)


def test_a_stopped_runner_says_so(runner: ProjectionRunner) -> None:
    runner.stop()

    assert runner.state().state == "stopped"
