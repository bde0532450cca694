"""The Venue aggregate, and what a venue code means."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInputError


class CodeKind(StrEnum):
    """A venue has an entry code (door poster) and a checkout code (till poster)."""

    ENTRY = "entry"
    CHECKOUT = "checkout"


class VenueCode(msgspec.Struct, frozen=True):
    """What an authenticated venue code says: which venue, which poster, which key version."""

    venue_id: UUID
    kind: CodeKind
    key_version: int


class VenueChanges(msgspec.Struct, frozen=True):
    """What an owner asks to change of a venue; None (and `keep_capacity`) keep a value, since
    a capacity may also be cleared."""

    name: str | None = None
    address: str | None = None
    category: str | None = None
    capacity: int | None = None
    keep_capacity: bool = True
    max_dwell_minutes: int | None = None


class InvalidVenueCodeError(InvalidInputError):
    """The code is malformed, truncated or forged."""

    kind = "invalid-venue-code"


class VenueCodeRotatedError(InvalidInputError):
    """The code was valid once, but the merchant has rotated it since."""

    kind = "venue-code-rotated"


class Venue(Aggregate):
    """A place with a door code and a till code; owned by one merchant."""

    forgotten = False
    code_version = 1

    class Registered(Aggregate.Created):
        """A merchant registered a venue."""

        merchant_id: UUID
        name: str
        address: str
        region: str
        category: str
        capacity: int | None
        max_dwell_minutes: int

    class CodeRotated(Aggregate.Event):
        """The venue's codes were replaced; older codes are refused from now on."""

        key_version: int

    class Changed(Aggregate.Event):
        """The owner edited the venue's details; the event carries all of them as they are now,
        so that each projection replaces its record without reading the one before."""

        merchant_id: UUID
        name: str
        address: str
        region: str
        category: str
        capacity: int | None
        max_dwell_minutes: int

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        merchant_id: UUID,
        name: str,
        address: str,
        region: str,
        category: str,
        capacity: int | None,
        max_dwell_minutes: int,
    ) -> None:
        self.merchant_id = merchant_id
        self.name = name
        self.address = address
        self.region = region
        self.category = category
        self.capacity = capacity
        self.max_dwell_minutes = max_dwell_minutes
        self.code_version = 1

    @property
    def max_dwell(self) -> timedelta:
        """How long a visit may stay open before it is closed automatically."""
        return timedelta(minutes=self.max_dwell_minutes)

    def rotate_codes(self) -> int:
        """Replace both codes of the venue; returns the new key version."""
        self._codes_rotated(key_version=self.code_version + 1)
        return self.code_version

    @event(CodeRotated)
    def _codes_rotated(self, key_version: int) -> None:
        self.code_version = key_version

    def edit(
        self,
        name: str,
        address: str,
        category: str,
        capacity: int | None,
        max_dwell_minutes: int,
    ) -> bool:
        """Change the details a merchant may change (not the region: posters and agencies' data
        depend on it); records nothing and answers False when nothing differs."""
        now = (name, address, category, capacity, max_dwell_minutes)
        if now == (self.name, self.address, self.category, self.capacity, self.max_dwell_minutes):
            return False
        self._changed(
            merchant_id=self.merchant_id,
            name=name,
            address=address,
            region=self.region,
            category=category,
            capacity=capacity,
            max_dwell_minutes=max_dwell_minutes,
        )
        return True

    @event(Changed)
    def _changed(
        self,
        merchant_id: UUID,
        name: str,
        address: str,
        region: str,
        category: str,
        capacity: int | None,
        max_dwell_minutes: int,
    ) -> None:
        self.name = name
        self.address = address
        self.category = category
        self.capacity = capacity
        self.max_dwell_minutes = max_dwell_minutes
