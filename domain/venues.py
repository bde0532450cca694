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
