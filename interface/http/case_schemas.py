"""Request and response bodies of agencies, cases, tracing, exposures and audit (API.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

from domain.ports import VenueView
from domain.tracing import Contact
from interface.http.schemas import OFFICER_ROLE_PATTERN, Name, Phone, Region, Time, VenueRef
from interface.http.times import to_second

Reason = Annotated[str, Meta(max_length=500)]
Advice = Annotated[str, Meta(min_length=1, max_length=500)]
LegalBasis = Annotated[str, Meta(min_length=3, max_length=500)]
Jurisdiction = Annotated[list[Region], Meta(min_length=1, max_length=50)]


class NewAgency(msgspec.Struct, forbid_unknown_fields=True):
    """A health agency and the regions it may trace in."""

    name: Annotated[Name, Meta(description="The agency's name.")]
    jurisdiction: Annotated[
        Jurisdiction,
        Meta(
            description="Province, city or county codes (GB/T 2260) that exist; each covers "
            "the codes below it. 1 to 50 codes."
        ),
    ]


class RegionOut(msgspec.Struct):
    """A region code with its name on the national list."""

    region: str
    name: str


class AgencyCreated(msgspec.Struct):
    """201 of POST /v1/agencies."""

    agency_id: UUID
    jurisdiction: list[RegionOut]


class NewOfficer(msgspec.Struct, forbid_unknown_fields=True):
    """An officer of the agency: a tracer opens cases, a supervisor approves them."""

    name: Annotated[Name, Meta(description="The officer's name.")]
    role: Annotated[
        str, Meta(pattern=OFFICER_ROLE_PATTERN, description="`tracer` or `supervisor`.")
    ]


class OfficerCreated(msgspec.Struct):
    """201 of POST /v1/agencies/{agency_id}/officers."""

    officer_id: UUID
    token: str


class NewAuditor(msgspec.Struct, forbid_unknown_fields=True):
    """An auditor, who reads the audit trail and nothing else."""

    name: Annotated[Name, Meta(description="The auditor's name.")]


class AuditorCreated(msgspec.Struct):
    """201 of POST /v1/auditors."""

    auditor_id: UUID
    token: str


class IndexPerson(msgspec.Struct, forbid_unknown_fields=True):
    """The confirmed person: by phone (every visitor registered with it) or visitor id."""

    phone: Annotated[
        Phone | None, Meta(description="Every visitor registered with this phone number.")
    ] = None
    visitor_id: Annotated[UUID | None, Meta(description="One visitor, by id.")] = None


class NewCase(msgspec.Struct, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}):
    """A case for a confirmed person, over a window of at most 28 days that has begun."""

    index: Annotated[
        IndexPerson, Meta(description="The confirmed person: exactly one of phone and visitor_id.")
    ]
    start: Annotated[Time, Meta(description="Start of the window, RFC 3339 with an offset.")]
    end: Annotated[
        Time,
        Meta(description="End of the window: after `from`, at most 28 days later, not future."),
    ]
    legal_basis: Annotated[
        LegalBasis, Meta(description="Why the agency may trace this person (3 to 500 characters).")
    ]


class Approval(msgspec.Struct, forbid_unknown_fields=True):
    """A supervisor's decision on a pending case."""

    approve: Annotated[bool, Meta(description="`true` approves the case, `false` rejects it.")]
    reason: Annotated[Reason, Meta(description="Why, for the audit trail (at most 500).")] = ""


class Closure(msgspec.Struct, forbid_unknown_fields=True):
    """The closing of a case."""

    reason: Annotated[
        str,
        Meta(min_length=3, max_length=500, description="Why, for the audit trail (3 to 500)."),
    ]


class CaseOut(msgspec.Struct, rename={"start": "from", "end": "to"}):
    """A case as its agency sees it; `expires_at` is set once it is approved."""

    case_id: UUID
    status: str
    start: datetime
    end: datetime
    opened_by: UUID
    approved_by: UUID | None
    legal_basis: str
    index_persons: int
    expires_at: datetime | None = None
    opened_at: datetime | None = None
    # How the tracer named the index person: `phone` or `visitor_id`; never who it is.
    index_by: str | None = None


class CaseList(msgspec.Struct):
    """GET /v1/cases: a page of the agency's cases, newest first; `cursor` asks for the next
    page (null: this was the last)."""

    cases: list[CaseOut]
    cursor: str | None = None


class TrajectoryVenue(msgspec.Struct):
    """A venue of a trajectory."""

    venue_id: UUID
    name: str
    address: str
    region: str
    region_name: str | None


class TrajectoryVisitOut(msgspec.Struct):
    """One visit of the index person."""

    visit_id: UUID
    venue: TrajectoryVenue
    checked_in_at: datetime
    checked_out_at: datetime | None
    checkout_reason: str | None


class TrajectoryOut(msgspec.Struct):
    """GET /v1/cases/{case_id}/trajectory."""

    visits: list[TrajectoryVisitOut]
    outside_jurisdiction: int


class ExposureOut(msgspec.Struct, rename={"start": "from", "end": "to"}):
    """One exposure of a contact."""

    venue_id: UUID
    # The venue's name, so that a call list reads without a second lookup; null if unknown.
    venue_name: str | None
    start: datetime
    end: datetime
    overlap_seconds: int


class ContactOut(msgspec.Struct):
    """A close contact."""

    visitor_id: UUID
    depth: int
    exposures: list[ExposureOut]


class ContactsOut(msgspec.Struct):
    """GET /v1/cases/{case_id}/contacts."""

    contacts: list[ContactOut]


class DetailsOut(msgspec.Struct):
    """POST /v1/cases/{case_id}/contacts/{visitor_id}/details."""

    name: str
    phone: str


class NewExposure(
    msgspec.Struct, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}
):
    """An exposure at a venue: everyone whose visit overlaps the window is alerted."""

    case_id: Annotated[UUID, Meta(description="An approved case of the tracer's agency.")]
    venue_id: Annotated[
        UUID, Meta(description="A venue the index person visited, in the agency's jurisdiction.")
    ]
    start: Annotated[Time, Meta(description="Start of the exposure window, with an offset.")]
    end: Annotated[
        Time, Meta(description="End of the exposure window: after `from`, at most 28 days later.")
    ]
    advice: Annotated[
        Advice,
        Meta(description="What the people reached should do (1 to 500 characters); they see it."),
    ]


class ExposureCreated(msgspec.Struct):
    """201 of POST /v1/exposures."""

    exposure_id: UUID
    notified: int


class MyExposure(msgspec.Struct, rename={"start": "from", "end": "to"}):
    """A declared exposure that overlaps one of the visitor's visits."""

    venue: VenueRef
    start: datetime
    end: datetime
    declared_at: datetime
    advice: str = ""


class MyExposures(msgspec.Struct):
    """GET /v1/me/exposures."""

    exposures: list[MyExposure]


class AuditEntryOut(msgspec.Struct, omit_defaults=True):
    """One entry of the audit trail."""

    at: datetime
    actor: str
    action: str
    case_id: UUID | None = None
    subject: str | None = None
    position: int = 0


class AuditOut(msgspec.Struct):
    """GET /v1/audit."""

    entries: list[AuditEntryOut]


class CheckpointOut(msgspec.Struct):
    """GET /v1/audit/checkpoint: a signed chain head for the auditor to keep elsewhere.

    `signature` is Ed25519 under `public_key` (both hex) over the bytes
    `fangxin.audit.checkpoint.v1`, `entries` (8 bytes, big-endian), `head` (32 bytes) and
    `issued_at` (microseconds since 1970-01-01 UTC, 8 bytes, big-endian, signed), so it can be
    checked offline; `checkpoint` is the same, compact, for `/v1/audit/verification`.
    """

    entries: int
    head: str
    issued_at: datetime
    signature: str
    public_key: str
    checkpoint: str
    algorithm: str = "Ed25519"


class CheckpointCheckOut(msgspec.Struct, omit_defaults=True):
    """Whether every entry up to the checkpoint given is still there unchanged.

    `reason` when not: `entries-missing` (the trail is shorter), `chain-broken` (an entry up
    to the checkpoint was altered, removed or moved), `rewritten` (entries up to it were
    replaced and chained again under the audit key).
    """

    valid: bool
    entries: int
    head: str
    issued_at: datetime
    reason: str | None = None


class VerificationOut(msgspec.Struct, omit_defaults=True):
    """GET /v1/audit/verification: the whole chain, and the chain against a checkpoint if given."""

    valid: bool
    entries: int
    first_bad_position: int | None = None
    checkpoint: CheckpointCheckOut | None = None
    public_key: str | None = None


def contact_out(contact: Contact, venue: Callable[[UUID], VenueView | None]) -> ContactOut:
    """One contact with its exposures, each naming its venue."""
    exposures = []
    for e in contact.exposures:
        found = venue(e.venue_id)
        exposures.append(
            ExposureOut(
                venue_id=e.venue_id,
                venue_name=found.name if found else None,
                start=to_second(e.start),
                end=to_second(e.end),
                overlap_seconds=int(e.overlap.total_seconds()),
            )
        )
    return ContactOut(visitor_id=contact.visitor_id, depth=contact.depth, exposures=exposures)
