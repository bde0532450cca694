"""Exactly once: a catch-up killed in the middle of a batch, or two racing, leaves the on-disk
history equal, row for row, to a fresh rebuild of the same log from position 0."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.history_log import World, populate
from tests.history_stores import Stores, history_fixtures, reads_of

stores, log, open_history = history_fixtures(["sqlite", "postgres"])

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAYS = [TODAY - timedelta(days=3), TODAY - timedelta(days=2), TODAY - timedelta(days=1)]
WINDOW = (TODAY - timedelta(days=5), TODAY + timedelta(days=1))


class KilledError(Exception):
    """Stands for the process dying in the middle of a batch."""


def dying_after(history: Any, writes: int) -> None:
    """Make the history's `writes`-th group write raise once it has written its rows."""
    original = history._write
    count = 0

    def write(*args: Any) -> Any:
        nonlocal count
        count += 1
        result = original(*args)
        if count == writes:
            raise KilledError
        return result

    history._write = write


def head(stores: Stores) -> int:
    return int(stores.log.recorder.max_notification_id() or 0)


def test_a_batch_killed_after_writing_rows_leaves_a_fresh_rebuild(stores: Stores) -> None:
    world = populate(stores.log, DAYS)
    history = stores.open(catch_up=False, batch=40)
    dying_after(history, writes=3)

    with pytest.raises(KilledError):
        history.catch_up()

    stopped_at = history.position()
    assert stopped_at % 40 == 0
    assert 0 < stopped_at < head(stores)
    assert stores.dump(history) != stores.dump(stores.rebuild())
    history._write = type(history)._write.__get__(history)
    assert history.catch_up() == head(stores) - stopped_at
    rebuilt = stores.rebuild()
    assert history.position() == rebuilt.position() == head(stores)
    assert stores.dump(history) == stores.dump(rebuilt)
    assert_same_reads(history, rebuilt, world)


def test_racing_catch_ups_apply_each_event_once(stores: Stores) -> None:
    world = populate(stores.log, DAYS)
    first = stores.open(catch_up=False, batch=25)
    second = stores.open(catch_up=False, batch=25)
    applied: list[int] = []
    threads = [
        threading.Thread(target=lambda h=h: applied.append(h.catch_up())) for h in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sum(applied) == head(stores)
    rebuilt = stores.rebuild()
    assert stores.dump(first) == stores.dump(rebuilt)
    assert_same_reads(second, rebuilt, world)


def test_a_start_resumes_from_the_position_on_disk(stores: Stores) -> None:
    populate(stores.log, DAYS[:1])
    stores.open()
    populate(stores.log, DAYS[1:], seed=8)
    reopened = stores.open(catch_up=False)
    before = reopened.position()

    assert 0 < before < head(stores)
    assert reopened.catch_up() == head(stores) - before


def assert_same_reads(history: Any, rebuilt: Any, world: World) -> None:
    assert reads_of(history, world, *WINDOW) == reads_of(rebuilt, world, *WINDOW)
    assert any(reads_of(history, world, *WINDOW)["stays_of"])
    erased = reads_of(history, _only(world.erased), *WINDOW)
    assert not any(erased["of_guardian"])
    assert not any(erased["stays_of"])


def _only(people: list[Any]) -> World:
    world = World()
    world.people = people
    return world
