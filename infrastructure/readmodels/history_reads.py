"""Contact tracing's read models over the history: stays and exposures are read from disk.

They are read a few hundred times a day and written millions of times, so they live in the
history (`infrastructure/history`), whatever keeps what is hot (Redis in production; its
pub/sub tells connected visitors of a new exposure, `redis/feed.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from domain.ports import ExposureView
from domain.tracing import Stay, Window
from infrastructure.history.port import History


class HistoryContactIndex:
    """Stays by venue and by person, for contact tracing, read from the history."""

    def __init__(self, history: History) -> None:
        self._history = history

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays at a venue intersecting [t0, t1]."""
        return self._history.stays_at(venue_id, t0, t1, now)

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1]."""
        return self._history.stays_of(visitor_id, t0, t1, now)

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_at` of each (venue, t0, t1) window, in one read of the history."""
        return self._history.stays_at_many(windows, now)

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_of` of each (visitor, t0, t1) window, in one read of the history."""
        return self._history.stays_of_many(windows, now)

    def drop_before(self, cutoff: datetime) -> int:
        """Retention (shared with the visit log, which drops the same days first)."""
        return drop_history(self._history, cutoff)


class HistoryExposureLog:
    """Declared exposures by venue, read from the history."""

    def __init__(self, history: History) -> None:
        self._history = history

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures at a venue overlapping [start, end]."""
        return self._history.exposures_at(venue_id, start, end)


def drop_history(history: History, cutoff: datetime) -> int:
    """Drop the history's days before the cutoff's UTC day, whole (the day keys went first);
    returns how many days went. The history catches up first: no row of those days comes in
    after them."""
    history.catch_up()
    return history.drop_days_before(cutoff.astimezone(UTC).date())
