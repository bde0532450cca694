"""What commands answer: the shapes the interface turns into response bodies."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from domain.ports import VenueView


class Registration(msgspec.Struct, frozen=True):
    """A new principal and its only copy of the bearer token."""

    id: UUID
    token: str


class VenueCodes(msgspec.Struct, frozen=True):
    """A venue's current entry and checkout codes."""

    code: str
    checkout_code: str


class CheckedIn(msgspec.Struct, frozen=True):
    """A check-in's visit, and one visit per party member, in the order named."""

    visit_id: UUID
    venue: VenueView
    checked_in_at: datetime
    party_visit_ids: list[UUID]


class CheckedOut(msgspec.Struct, frozen=True):
    """A closed visit and how long it lasted."""

    visit_id: UUID
    checked_out_at: datetime
    dwell_seconds: int
