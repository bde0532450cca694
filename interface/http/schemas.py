"""Request and response bodies of the HTTP API (API.md), as msgspec Structs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9][0-9 \-]{4,22}[0-9]$")]
Region = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Address = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Capacity = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
DwellMinutes = Annotated[int, msgspec.Meta(ge=5, le=24 * 60)]
Party = Annotated[list[Name], msgspec.Meta(max_length=10)]


class NewVisitor(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/visitors."""

    name: Name
    phone: Phone
    dependents: Party = []


class VisitorCreated(msgspec.Struct):
    """201 of POST /v1/visitors."""

    visitor_id: UUID
    token: str


class NewMerchant(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/merchants."""

    name: Name
    contact_phone: Phone


class MerchantCreated(msgspec.Struct):
    """201 of POST /v1/merchants."""

    merchant_id: UUID
    token: str


class NewVenue(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/venues."""

    name: Name
    address: Address
    region: Region
    category: Name
    capacity: Capacity | None = None
    max_dwell_minutes: DwellMinutes | None = None


class VenueOut(msgspec.Struct):
    """A venue as its owner sees it, with its current codes."""

    venue_id: UUID
    name: str
    address: str
    region: str
    # Null when the stored code is not on the national list: the log may hold venues that were
    # registered without the check.
    region_name: str | None
    category: str
    capacity: int | None
    max_dwell_minutes: int
    code: str
    checkin_url: str
    checkout_code: str
    checkout_url: str


class VenueList(msgspec.Struct):
    """GET /v1/venues."""

    venues: list[VenueOut]


class CodesOut(msgspec.Struct):
    """201 of POST /v1/venues/{venue_id}/code-rotations."""

    code: str
    checkin_url: str
    checkout_code: str
    checkout_url: str


class CheckInBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/check-ins."""

    code: Code
    party: Party = []


class VenueRef(msgspec.Struct):
    """A venue named in a visitor's answer."""

    venue_id: UUID
    name: str


class CheckInOut(msgspec.Struct):
    """201 of a check-in."""

    visit_id: UUID
    venue: VenueRef
    checked_in_at: datetime
    party_visit_ids: list[UUID] = []


class CheckOutBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/check-outs: exactly one of `visit_id` and `code`."""

    visit_id: UUID | None = None
    code: Code | None = None


class CheckOutOut(msgspec.Struct):
    """200 of a check-out."""

    visit_id: UUID
    checked_out_at: datetime
    dwell_seconds: int


class VisitOut(msgspec.Struct):
    """One of a visitor's visits; `person` is `self` or a dependent's name."""

    visit_id: UUID
    venue: VenueRef
    checked_in_at: datetime
    checked_out_at: datetime | None
    checkout_reason: str | None
    person: str = "self"


class VisitsOut(msgspec.Struct):
    """GET /v1/me/visits."""

    visits: list[VisitOut]


class AssistedCheckIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/venues/{venue_id}/assisted-check-ins."""

    name: Name
    phone: Phone


class AssistedOut(msgspec.Struct):
    """201 of an assisted check-in."""

    visit_id: UUID
    checked_in_at: datetime


class TillCheckOut(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/venues/{venue_id}/check-outs."""

    visit_id: UUID


class StatsBucketOut(msgspec.Struct):
    """One bucket of venue statistics: counts and dwell, never a visitor.

    A `suppressed` bucket (fewer than 5 unique visitors in each of its hours, or not yet
    ended) has every figure null. Dwell is whole seconds.
    """

    start: datetime
    suppressed: bool
    check_ins: int | None
    unique_visitors: int | None
    median_dwell_seconds: int | None
    p90_dwell_seconds: int | None
    auto_closed: int | None


class StatsOut(msgspec.Struct, rename={"start": "from", "end": "to"}):
    """GET /v1/venues/{venue_id}/stats: the window as rounded to whole buckets, and its figures."""

    start: datetime
    end: datetime
    buckets: list[StatsBucketOut]
    totals: StatsBucketOut


class OccupancyOut(msgspec.Struct):
    """GET /v1/venues/{venue_id}/occupancy."""

    current: int
    capacity: int | None
