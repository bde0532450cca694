"""Ports of what tracing gives back to people: merchants' notices, regional risk levels, and
the record of accesses to a visitor's data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec


class NoticeView(msgspec.Struct, frozen=True):
    """A merchant's notice to the visitors of a venue in a window."""

    notice_id: UUID
    venue_id: UUID
    message: str
    start: datetime
    end: datetime
    sent_at: datetime


class NoticeLog(Protocol):
    """Read model of merchants' notices by venue (none names a visitor)."""

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[NoticeView]:
        """Notices of a venue whose window overlaps [start, end], oldest first."""
        ...

    def sent_since(self, venue_id: UUID, since: datetime) -> int:
        """How many notices the venue sent at or after `since`."""
        ...


class RiskView(msgspec.Struct, frozen=True):
    """The risk level a supervisor set for one region, and since when."""

    region: str
    level: str
    since: datetime


class RiskLevels(Protocol):
    """Read model of the levels set per region (a region without one has no entry)."""

    def own(self, regions: Sequence[str]) -> list[RiskView | None]:
        """The level set for each of these regions, in order (None where none was set)."""
        ...


class AccessView(msgspec.Struct, frozen=True):
    """One recorded read of case data that concerned a person: the case event that recorded it
    (its audit reference is `case_id:version`), what was read and when."""

    case_id: UUID
    version: int
    what: str
    at: datetime


class AccessIndex(Protocol):
    """Read model of the case reads that concerned each person (index person or contact)."""

    def of_people(self, people: Sequence[UUID]) -> list[AccessView]:
        """Reads concerning any of these people, oldest first, each once."""
        ...
