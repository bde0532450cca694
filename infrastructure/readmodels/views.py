"""What an event means for the read side: the views both projections (memory, Redis) store."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from domain.cases import ExposureNotice
from domain.people import Agency, Auditor, Merchant, Officer, Visitor
from domain.ports import AgencyView, ExposureView, Principal, VenueView, VisitorView, VisitView
from domain.venues import Venue
from domain.visits import Visit
from infrastructure.readmodels.records import Pseudonyms

Registered = Visitor.Registered | Merchant.Registered | Officer.Registered | Auditor.Registered


def principal(e: Registered) -> Principal:
    """Who the token of a registration belongs to."""
    if isinstance(e, Officer.Registered):
        return Principal(role=e.role, id=e.originator_id, agency_id=e.agency_id)
    role = {
        Visitor.Registered: "visitor",
        Merchant.Registered: "merchant",
        Auditor.Registered: "auditor",
    }[type(e)]
    return Principal(role=role, id=e.originator_id)


class NewVisitor(msgspec.Struct, frozen=True):
    """A registration as the read side receives it: the directory keeps its dependents' names
    only as keyed pseudonyms (`view`)."""

    visitor_id: UUID
    dependents: dict[str, UUID]
    phone_index: str

    def view(self, pseudonyms: Pseudonyms) -> VisitorView:
        """The visitor without name or phone, dependents by the pseudonym of their name."""
        return VisitorView(
            visitor_id=self.visitor_id,
            dependents={
                pseudonyms.name(self.visitor_id, name): dependent_id
                for name, dependent_id in self.dependents.items()
            },
            phone_index=self.phone_index,
        )


def visitor_view(e: Visitor.Registered) -> NewVisitor:
    """A visitor without name or phone (dependents' names still in, for the directory)."""
    return NewVisitor(
        visitor_id=e.originator_id,
        dependents=dict(zip(e.dependent_names, e.dependent_ids, strict=True)),
        phone_index=e.phone_index,
    )


def venue_view(e: Venue.Registered | Venue.Changed) -> VenueView:
    """A venue's details (code version 1: each projection keeps the code version apart)."""
    return VenueView(
        venue_id=e.originator_id,
        merchant_id=e.merchant_id,
        name=e.name,
        address=e.address,
        region=e.region,
        category=e.category,
        capacity=e.capacity,
        max_dwell_minutes=e.max_dwell_minutes,
        code_version=1,
    )


def agency_view(e: Agency.Registered) -> AgencyView:
    """An agency and its jurisdiction."""
    return AgencyView(agency_id=e.originator_id, name=e.name, jurisdiction=list(e.jurisdiction))


def exposure_view(e: ExposureNotice.Declared) -> ExposureView:
    """A declared exposure."""
    return ExposureView(
        exposure_id=e.originator_id,
        venue_id=e.venue_id,
        start=e.start,
        end=e.end,
        declared_at=e.declared_at,
        advice=e.advice,
        exempt=tuple(e.exempt),
    )


def visit_view(e: Visit.CheckedIn) -> VisitView:
    """The visit a check-in opens, as both deployments' read models keep it."""
    return VisitView(
        visit_id=e.originator_id,
        visitor_id=e.visitor_id,
        guardian_id=e.guardian_id,
        venue_id=e.venue_id,
        checked_in_at=e.at,
        via=e.via,
    )


def closed_view(visit: VisitView, at: datetime, reason: str) -> VisitView:
    """The visit once checked out."""
    return msgspec.structs.replace(visit, checked_out_at=at, checkout_reason=reason)
