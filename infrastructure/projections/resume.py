"""The embedded start: the memory read models resume from the history, not from the whole log.

The history keeps its rows and its tracking position on disk. At start it catches up from that
position (nothing to do after a clean stop); then the memory read models are given every event
of the log *but* the visits' (registrations, venues, cases, notices: thousands, against the
millions of check-ins and check-outs), and the visits still open are loaded from the history.
The runner then stands at the history's position and follows the log from there as usual. So
each visit event reaches the hot models exactly once: through the history's open visits up to
the position, or through the runner after it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Protocol

from eventsourcing.domain import AggregateEvent

import domain
from domain.ports import VisitView
from domain.visits import Visit
from infrastructure.history.port import History
from infrastructure.projections.runner import ProjectionRunner
from infrastructure.readmodels.memory.directory import MemoryDirectory
from infrastructure.readmodels.memory.open_visits import MemoryOpenVisits


class ResumableHistory(History, Protocol):
    """A history kept on disk, which can list the visits it holds open."""

    def open_visits(self) -> list[VisitView]:
        """Every visit not closed yet, as of the position."""
        ...


def hot_topics() -> list[str]:
    """The topics of every event of the domain but a visit's: what the memory read models
    replay at start. Every module of the domain is imported first, so that an aggregate added
    later is not missed."""
    for module in pkgutil.iter_modules(domain.__path__, f"{domain.__name__}."):
        importlib.import_module(module.name)
    return sorted(
        {
            f"{event.__module__}:{event.__qualname__}"
            for event in _subclasses(AggregateEvent)
            if event.__module__ != Visit.__module__
        }
    )


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def resume(
    history: ResumableHistory,
    runner: ProjectionRunner,
    hot: MemoryOpenVisits,
    directory: MemoryDirectory,
    default_max_dwell_minutes: int,
) -> int:
    """Bring the history up to the log, then the memory read models up to the history's
    position without replaying a visit; returns the position."""
    history.catch_up()
    position = history.position()
    runner.resume(position, hot_topics())

    def deadline(visit: VisitView) -> datetime:
        venue = directory.venue(visit.venue_id)
        minutes = venue.max_dwell_minutes if venue else default_max_dwell_minutes
        return visit.checked_in_at + timedelta(minutes=minutes)

    hot.load((visit, deadline(visit)) for visit in history.open_visits())
    return position
