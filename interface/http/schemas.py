"""Request and response bodies of the HTTP API (API.md), as msgspec Structs.

Request bodies are documented in the OpenAPI document from these very Structs (msgspec's own
JSON Schema of them), so what the document says is what `decode_body` accepts. Descriptions
of fields are written for client developers; `PATTERN_WORDS` says in words what each pattern
means, for error messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

PHONE_PATTERN = r"^\+?[0-9][0-9 \-]{4,22}[0-9]$"
REGION_PATTERN = r"^[0-9]{6}$"
OFFICER_ROLE_PATTERN = r"^(tracer|supervisor)$"
# What a value matching each pattern is, as the end of "FIELD must be ...".
PATTERN_WORDS = {
    PHONE_PATTERN: "a phone number: 6 to 24 digits, spaces or dashes, with an optional leading +",
    REGION_PATTERN: "a six-digit administrative division code (GB/T 2260), such as 110105",
    OFFICER_ROLE_PATTERN: "tracer or supervisor",
}

Name = Annotated[str, Meta(min_length=1, max_length=80)]
Phone = Annotated[str, Meta(pattern=PHONE_PATTERN, examples=["+86 138 0013 8000"])]
Region = Annotated[str, Meta(pattern=REGION_PATTERN, examples=["110105"])]
Code = Annotated[str, Meta(min_length=1, max_length=64)]
Address = Annotated[str, Meta(min_length=1, max_length=200)]
Capacity = Annotated[int, Meta(ge=1, le=100_000)]
DwellMinutes = Annotated[int, Meta(ge=5, le=24 * 60)]
Party = Annotated[list[Name], Meta(max_length=10)]
# msgspec accepts a time without an offset (the handler then answers `time-without-offset`);
# the document asks for RFC 3339 with one, as API.md does.
Time = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]


class NewVisitor(msgspec.Struct, forbid_unknown_fields=True):
    """A shopper to register: name and phone stay encrypted, read only by a tracer for a case."""

    name: Annotated[Name, Meta(description="The shopper's name, as a tracer would call them.")]
    phone: Annotated[Phone, Meta(description="The shopper's phone number, for a tracer's call.")]
    dependents: Annotated[
        Party,
        Meta(
            description="Names of people without a phone of their own (children, elderly "
            "relatives) who check in with this shopper; at most 10, each name unique."
        ),
    ] = []


class VisitorCreated(msgspec.Struct):
    """201 of POST /v1/visitors."""

    visitor_id: UUID
    token: str


class NewMerchant(msgspec.Struct, forbid_unknown_fields=True):
    """A merchant to register (a shop, a restaurant, a chain)."""

    name: Annotated[Name, Meta(description="The merchant's name.")]
    contact_phone: Annotated[Phone, Meta(description="A phone number to reach the merchant.")]


class MerchantCreated(msgspec.Struct):
    """201 of POST /v1/merchants."""

    merchant_id: UUID
    token: str


class NewVenue(msgspec.Struct, forbid_unknown_fields=True):
    """A venue to register: it gets an entry code and a checkout code, each on a poster."""

    name: Annotated[Name, Meta(description="The venue's name, as shoppers see it on check-in.")]
    address: Annotated[Address, Meta(description="The street address, 1 to 200 characters.")]
    region: Annotated[
        Region,
        Meta(
            description="The county-level division the venue lies in: a six-digit GB/T 2260 "
            "code that exists (110105 is Chaoyang District, Beijing)."
        ),
    ]
    category: Annotated[
        Name, Meta(description="What kind of venue this is, such as restaurant or market.")
    ]
    capacity: Annotated[
        Capacity | None, Meta(description="How many people fit at once (for occupancy).")
    ] = None
    max_dwell_minutes: Annotated[
        DwellMinutes | None,
        Meta(
            description="A visit still open this long after check-in is closed (reason "
            "`auto`); 5 to 1440 minutes, the service's default when absent."
        ),
    ] = None


class VenueEdit(msgspec.Struct, forbid_unknown_fields=True):
    """What an owner changes of a venue; a field left out keeps its value. The region stays:
    a venue that moves is a new venue, with new posters."""

    name: Annotated[
        Name | msgspec.UnsetType, Meta(description="The name shoppers see on check-in.")
    ] = msgspec.UNSET
    address: Annotated[
        Address | msgspec.UnsetType, Meta(description="The street address, 1 to 200 characters.")
    ] = msgspec.UNSET
    category: Annotated[
        Name | msgspec.UnsetType, Meta(description="What kind of venue this is.")
    ] = msgspec.UNSET
    capacity: Annotated[
        Capacity | msgspec.UnsetType | None,
        Meta(description="How many people fit at once; null removes the capacity."),
    ] = msgspec.UNSET
    max_dwell_minutes: Annotated[
        DwellMinutes | msgspec.UnsetType,
        Meta(description="5 to 1440 minutes; visits checked in from now on are closed after it."),
    ] = msgspec.UNSET


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
    """A check-in at the venue whose entry code was scanned."""

    code: Annotated[
        Code,
        Meta(description="The entry code from the venue's poster (the end of its checkin_url)."),
    ]
    party: Annotated[
        Party,
        Meta(
            description="Registered dependents who come along, by name; each gets a visit of "
            "their own."
        ),
    ] = []


class VenueRef(msgspec.Struct):
    """A venue named in a visitor's answer."""

    venue_id: UUID
    name: str


class RiskOut(msgspec.Struct):
    """A region's risk level in force, and since when (null: never set, so `low`)."""

    level: str
    since: datetime | None


class CheckInOut(msgspec.Struct):
    """201 of a check-in; `risk` is the level of the venue's region."""

    visit_id: UUID
    venue: VenueRef
    checked_in_at: datetime
    party_visit_ids: list[UUID] = []
    risk: RiskOut | None = None


class CheckOutBody(msgspec.Struct, forbid_unknown_fields=True):
    """A check-out: exactly one of `visit_id` and `code`."""

    visit_id: Annotated[
        UUID | None, Meta(description="The open visit to close (reason `manual`).")
    ] = None
    code: Annotated[
        Code | None,
        Meta(
            description="A code of the venue: its checkout code (reason `payment`) or its entry "
            "code (reason `scan`); closes the visitor's whole party there."
        ),
    ] = None


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
    """A person without a phone, checked in at the counter by the venue's staff."""

    name: Annotated[Name, Meta(description="The person's name, as a tracer would call them.")]
    phone: Annotated[Phone, Meta(description="A phone number to reach them.")]


class AssistedOut(msgspec.Struct):
    """201 of an assisted check-in."""

    visit_id: UUID
    checked_in_at: datetime


class TillCheckOut(msgspec.Struct, forbid_unknown_fields=True):
    """A check-out at the till, of a visit the shopper showed."""

    visit_id: Annotated[UUID, Meta(description="The open visit at this venue to close.")]


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


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    """A merchant's, officer's or auditor's token, to exchange for a console session cookie."""

    token: Annotated[
        str, Meta(min_length=1, max_length=200, description="The bearer token to sign in with.")
    ]
