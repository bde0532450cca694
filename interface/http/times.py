"""Times in answers: RFC 3339 to the second (API.md), in UTC or a zone the client names."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interface.http.problems import InvalidFieldError


class UnknownZoneError(InvalidFieldError):
    """A `tz` that is not an IANA time zone."""

    kind = "unknown-time-zone"


def to_second(at: datetime) -> datetime:
    """The time without its fraction of a second."""
    return at.replace(microsecond=0)


def maybe_second(at: datetime | None) -> datetime | None:
    """`to_second`, for a time that may be missing."""
    return None if at is None else at.replace(microsecond=0)


def zone(name: str) -> ZoneInfo:
    """An IANA zone such as `Asia/Shanghai`; 400 when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZoneError("tz must be an IANA time zone such as Asia/Shanghai", "tz") from None
