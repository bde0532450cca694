"""Replaying the whole log into fresh read models (`ProjectionRunner.rebuild`)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from infrastructure.projections.runner import ProjectionRunner


class Kept:
    """A projector that keeps every event it is given, as read models do."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.events: list[Any] = []
        self.fail_at = fail_at

    def apply(self, event: Any) -> None:
        if len(self.events) == self.fail_at:
            raise RuntimeError("a projector failed")
        self.events.append(event)


def stored_log(count: int) -> Application[Any]:
    app: Application[Any] = Application()
    app.save(*[Aggregate() for _ in range(count)])
    return app


def test_a_rebuild_applies_the_log_in_order_in_batches_and_leaves_nothing_frozen() -> None:
    app = stored_log(5)
    kept = Kept()
    runner = ProjectionRunner(app.recorder, app.mapper, [kept])
    progress: list[tuple[int, int, int]] = []

    done = runner.rebuild(lambda d, t: progress.append((d, t, gc.get_freeze_count())), batch=2)

    assert done == 5
    assert [e.originator_id for e in kept.events] == [
        n.originator_id for n in app.recorder.select_notifications(start=None, limit=10)
    ]
    assert [(d, t) for d, t, _ in progress] == [(2, 5), (4, 5), (5, 5)]
    assert all(frozen > 0 for _, _, frozen in progress)  # survivors out of the collector's way
    assert gc.get_freeze_count() == 0  # and handed back: garbage among them is still collected
    assert runner.position == 5


def test_a_rebuild_that_fails_hands_every_frozen_object_back() -> None:
    app = stored_log(5)
    runner = ProjectionRunner(app.recorder, app.mapper, [Kept(fail_at=3)])

    with pytest.raises(RuntimeError, match="a projector failed"):
        runner.rebuild(lambda d, t: None, batch=2)

    assert gc.get_freeze_count() == 0
    assert runner.position == 3


def test_a_rebuild_in_a_process_that_froze_objects_itself_leaves_them_frozen() -> None:
    app = stored_log(3)
    runner = ProjectionRunner(app.recorder, app.mapper, [Kept()])
    gc.freeze()  # as a server does once it has started (`settle_garbage_collector`)
    frozen = gc.get_freeze_count()
    try:
        runner.rebuild(lambda d, t: None, batch=2)

        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()
