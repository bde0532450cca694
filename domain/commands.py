"""What commands take and answer, and how a command hands its steps to its driver."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)

from domain.errors import ConflictError
from domain.ports import (
    Clock,
    CodeSigner,
    ContactIndex,
    Credentials,
    Directory,
    ExposureLog,
    Ids,
    KeyShredder,
    ReadModelSync,
    Regions,
    Seen,
    VenueView,
    VisitLog,
)

# Ids derived from (principal, Idempotency-Key): a retried request finds what it made before.
# The inputs are pseudonymous ids and client keys, never personal data.
ID_NAMESPACE = UUID("6f1c2a8e-3d0b-5c57-9a51-0e4d2f6b7a10")
CONFLICT_RETRIES = 6


T = TypeVar("T")


@dataclass(frozen=True)
class Look:
    """A step that asks what the read side knows now: open visits of people, one visit."""

    people: tuple[UUID, ...]
    visit_id: UUID | None = None


# A command as steps: a step hands over the aggregates to commit, or a `Look` that the driver
# answers with what it `Seen`; a conflict on commit is thrown back into it. The same steps run
# in a thread (`run`) or on the event loop (`run_async`, which awaits its reads and commits).
Steps = Generator[list[Aggregate] | Look, Seen | None, T]


class DateAsISO(Transcoding):
    """Stores `datetime.date` values as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        """Encode."""
        return obj.isoformat()

    def decode(self, data: str) -> date:
        """Decode."""
        return date.fromisoformat(data)


def transcodings() -> list[Transcoding]:
    """The value types stored events may hold besides JSON's own."""
    return [UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()]


class IdempotencyKeyReusedError(ConflictError):
    """The key was used before for something this answer cannot repeat."""

    kind = "idempotency-key-reused"


@dataclass(frozen=True)
class Ports:
    """Everything the application needs from outside, built by the composition root."""

    clock: Clock
    ids: Ids
    credentials: Credentials
    codes: CodeSigner
    keys: KeyShredder
    directory: Directory
    visits: VisitLog
    contacts: ContactIndex
    exposures: ExposureLog
    sync: ReadModelSync
    regions: Regions


class Registration(msgspec.Struct, frozen=True):
    """A new principal and its only copy of the bearer token."""

    id: UUID
    token: str


class VenueCodes(msgspec.Struct, frozen=True):
    """A venue's current codes."""

    code: str
    checkout_code: str


class CheckedIn(msgspec.Struct, frozen=True):
    """The answer to a check-in."""

    visit_id: UUID
    venue: VenueView
    checked_in_at: datetime
    party_visit_ids: list[UUID]


class CheckedOut(msgspec.Struct, frozen=True):
    """The answer to a check-out."""

    visit_id: UUID
    checked_out_at: datetime
    dwell_seconds: int


class Mapped(NamedTuple):
    """A new domain event and its stored form (encoded, encrypted), made by its writer.

    Writers map their own events before they hand them to the group commit, so that its
    flusher, which every writer of the process waits on, only inserts.
    """

    event: Any
    stored: StoredEvent

    @property
    def originator_id(self) -> UUID | str:
        """The aggregate's id (what a store's duplicate-key error names)."""
        return self.stored.originator_id

    @property
    def originator_version(self) -> int:
        """The event's version in its aggregate."""
        return self.stored.originator_version


def derive_id(kind: str, *parts: object) -> UUID:
    """A deterministic id for an idempotent create."""
    return uuid.uuid5(ID_NAMESPACE, "|".join([kind, *map(str, parts)]))
