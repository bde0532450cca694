"""In-memory read models of merchants' notices and of regions' risk levels."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from domain.outreach_ports import NoticeView, RiskView


class MemoryNoticeLog:
    """Notices by venue; none names a visitor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_venue: dict[UUID, list[NoticeView]] = defaultdict(list)

    def add(self, notice: NoticeView) -> None:
        """Remember a notice (once)."""
        with self._lock:
            known = self._by_venue[notice.venue_id]
            if all(n.notice_id != notice.notice_id for n in known):
                known.append(notice)
                known.sort(key=lambda n: (n.sent_at, n.notice_id))

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[NoticeView]:
        """Notices of a venue whose window overlaps [start, end], oldest first."""
        with self._lock:
            return [
                n for n in self._by_venue.get(venue_id, []) if n.start <= end and start <= n.end
            ]

    def sent_since(self, venue_id: UUID, since: datetime) -> int:
        """How many notices the venue sent at or after `since`."""
        with self._lock:
            return sum(1 for n in self._by_venue.get(venue_id, []) if n.sent_at >= since)


class MemoryRiskLevels:
    """The level set for each region, by code."""

    def __init__(self) -> None:
        self._levels: dict[str, RiskView] = {}

    def put(self, risk: RiskView) -> None:
        """Record a region's new level."""
        self._levels[risk.region] = risk

    def own(self, regions: Sequence[str]) -> list[RiskView | None]:
        """The level set for each region, None where none was."""
        return [self._levels.get(region) for region in regions]
