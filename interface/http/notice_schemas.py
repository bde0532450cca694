"""Bodies of notices, risk levels, accesses and merchants' token rotations (API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from domain.notices import MAX_MESSAGE
from domain.risk import MAX_NOTE
from interface.http.schemas import RiskOut, Time, VenueRef

__all__ = ["RiskOut"]


class NewNotice(msgspec.Struct, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}):
    """A notice to everyone whose visit to the venue overlapped [from, to]."""

    message: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_MESSAGE,
            description="What the visitors are told, 1 to 500 characters.",
        ),
    ]
    start: Annotated[
        Time, Meta(description="Start of the window, within the retention period (28 days).")
    ]
    end: Annotated[
        Time,
        Meta(description="End of the window: not in the future, at most 7 days after `from`."),
    ]


class NoticeSent(msgspec.Struct):
    """201 of a notice: how many were reached, or "fewer than 5" (never who)."""

    notice_id: UUID
    reached: int | str


class MyNotice(msgspec.Struct, rename={"start": "from", "end": "to"}):
    """A venue's notice to a visitor whose visit overlapped its window."""

    venue: VenueRef
    message: str
    start: datetime
    end: datetime
    sent_at: datetime


class MyNotices(msgspec.Struct):
    """200 of GET /v1/me/notices."""

    notices: list[MyNotice]


class AccessOut(msgspec.Struct):
    """One read of the visitor's data by an agency."""

    agency: str
    action: str
    at: datetime
    legal_basis: str


class AccessesOut(msgspec.Struct):
    """200 of GET /v1/me/accesses."""

    accesses: list[AccessOut]


class NewRiskLevel(msgspec.Struct, forbid_unknown_fields=True):
    """A region's new risk level."""

    level: Annotated[
        Literal["low", "medium", "high"], Meta(description="`low`, `medium` or `high`.")
    ]
    note: Annotated[
        str,
        Meta(
            max_length=MAX_NOTE,
            description="Why, for the record (kept encrypted; not shown to the public).",
        ),
    ] = ""


class RegionRiskOut(msgspec.Struct):
    """200 of GET /v1/regions/{region}/risk; `set_for` names the region whose level it is
    (the region itself, or the city or province it inherits from; null when none was set)."""

    region: str
    name: str
    level: str
    since: datetime | None
    set_for: str | None


class RiskSettingOut(msgspec.Struct):
    """One level as a supervisor set it; `by` is the officer's id."""

    level: str
    note: str
    at: datetime
    by: str


class RiskHistoryOut(msgspec.Struct):
    """200 of GET /v1/regions/{region}/risk/history: the levels set for the region itself,
    newest first (not those it inherits)."""

    region: str
    name: str
    history: list[RiskSettingOut]


NOTICE_EXAMPLES: dict[type, dict[str, Any]] = {
    NewNotice: {
        "message": "3 月 10 日晚间到店的顾客请留意健康状况。",
        "from": "2026-03-10T18:00:00+08:00",
        "to": "2026-03-10T21:00:00+08:00",
    },
    NewRiskLevel: {"level": "medium", "note": "two cases in a week"},
}
