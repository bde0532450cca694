"""What the domain needs from the outside world, as Protocols; infrastructure provides them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain.tracing import Stay, Window
from domain.venues import CodeKind, VenueCode


class Clock(Protocol):
    """The current time, always timezone-aware UTC."""

    def now(self) -> datetime: ...


class Ids(Protocol):
    """Fresh random ids."""

    def new(self) -> UUID: ...


class Credentials(Protocol):
    """Bearer tokens and the keyed blind index of phone numbers."""

    def new_token(self) -> tuple[str, str]:
        """A fresh token (at least 128 random bits) and the hash that is stored of it."""
        ...

    def token_hash(self, token: str) -> str:
        """The stored hash of a presented token."""
        ...

    def phone_index(self, phone: str) -> str:
        """The blind index of a phone number (keyed, never the number itself)."""
        ...


class CodeSigner(Protocol):
    """Issues and authenticates venue codes."""

    def issue(self, venue_id: UUID, kind: CodeKind, key_version: int) -> str:
        """The short URL-safe code for one poster."""
        ...

    def read(self, code: str) -> VenueCode:
        """What a code says; raises InvalidVenueCodeError when it is not authentic."""
        ...


class Regions(Protocol):
    """The national list of administrative divisions (GB/T 2260), by six-digit code."""

    def name(self, code: str) -> str | None:
        """The division's name (`110105` is 朝阳区), or None when the code is not on the list."""
        ...

    def is_jurisdiction(self, code: str) -> bool:
        """Whether the code is a province, city or county on the list (what an agency covers)."""
        ...

    def is_venue_region(self, code: str) -> bool:
        """Whether the code is a county-level division on the list (where a venue lies)."""
        ...


class KeyShredder(Protocol):
    """Destroys data keys, which makes the data they encrypt unreadable for good."""

    def destroy_visitor(self, visitor_id: UUID) -> None:
        """Shred a visitor's personal data and visits."""
        ...

    def destroy_days_before(self, day: date) -> int:
        """Shred every visit that began before `day` (UTC); returns how many day keys went."""
        ...


class Principal(msgspec.Struct, frozen=True):
    """Who a bearer token belongs to."""

    role: str
    id: UUID
    agency_id: UUID | None = None


class VenueView(msgspec.Struct, frozen=True):
    """A venue as the read side knows it."""

    venue_id: UUID
    merchant_id: UUID
    name: str
    address: str
    region: str
    category: str
    capacity: int | None
    max_dwell_minutes: int
    code_version: int


class VisitorView(msgspec.Struct, frozen=True):
    """A visitor as the read side knows it: no name or phone, and dependents by a keyed
    pseudonym of their name (names live only in the encrypted registration)."""

    visitor_id: UUID
    dependents: dict[str, UUID]
    phone_index: str


class VisitView(msgspec.Struct, frozen=True, gc=False):
    """A visit as the read side knows it."""

    # Untracked by the garbage collector (ids, times and text form no cycle): memory read
    # models keep millions of them.

    visit_id: UUID
    visitor_id: UUID
    guardian_id: UUID
    venue_id: UUID
    checked_in_at: datetime
    via: str
    checked_out_at: datetime | None = None
    checkout_reason: str | None = None


class Seen(msgspec.Struct, frozen=True):
    """What the read side knew at one moment: people's open visits, and one visit if asked."""

    open_visits: dict[UUID, list[VisitView]]
    visit: VisitView | None = None


class Directory(Protocol):
    """Read model of tokens, visitors, venues and agencies (the projections write it)."""

    def principal(self, token_hash: str) -> Principal | None:
        """Whose token this is."""
        ...

    async def principal_async(self, token_hash: str) -> Principal | None:
        """`principal` for the event loop: a read it must make is awaited, not blocking."""
        ...

    def venue(self, venue_id: UUID) -> VenueView | None: ...

    def venues_of(self, merchant_id: UUID) -> list[VenueView]:
        """A merchant's venues, oldest first."""
        ...

    def visitor(self, visitor_id: UUID) -> VisitorView | None:
        """One visitor (None once erased)."""
        ...

    def dependent(self, visitor: VisitorView, name: str) -> UUID | None:
        """The visitor's dependent registered under this name (matched by its pseudonym)."""
        ...

    def visitors_by_phone(self, phone_index: str) -> list[UUID]:
        """Every visitor registered with that phone."""
        ...

    def guardian_of(self, person_id: UUID) -> UUID | None:
        """The registered visitor a person belongs to (themself, or a dependent's guardian)."""
        ...

    def agency(self, agency_id: UUID) -> AgencyView | None: ...


class VisitLog(Protocol):
    """Read model of visits: by visitor, by venue, open ones and their deadlines."""

    def get(self, visit_id: UUID) -> VisitView | None: ...

    def of_guardian(self, guardian_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits of a visitor and their dependents that began in [start, end), oldest first."""
        ...

    def open_of(self, visitor_id: UUID) -> list[VisitView]:
        """Open visits of one person."""
        ...

    async def look(self, people: Sequence[UUID], visit_id: UUID | None) -> Seen:
        """Open visits of these people and one visit, awaited (never blocks the event loop).

        The visit may be missing once closed (production keeps only open ones hot): a caller
        that finds none reads the log before it believes the visit was never made."""
        ...

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """Visits at a venue that began in [start, end), oldest first."""
        ...

    def occupancy(self, venue_id: UUID) -> int:
        """How many visits are open at a venue."""
        ...

    def due(self, now: datetime, limit: int) -> list[VisitView]:
        """Open visits whose venue's maximum dwell has passed."""
        ...

    def drop_before(self, cutoff: datetime) -> int:
        """Drop visits that began before `cutoff`; returns how many."""
        ...


class AgencyView(msgspec.Struct, frozen=True):
    """An agency as the read side knows it."""

    agency_id: UUID
    name: str
    jurisdiction: list[str]


class ExposureView(msgspec.Struct, frozen=True):
    """A declared exposure at a venue."""

    exposure_id: UUID
    venue_id: UUID
    start: datetime
    end: datetime
    declared_at: datetime
    advice: str = ""
    # People not alerted at their own visits (the case's index persons).
    exempt: tuple[UUID, ...] = ()


class ContactIndex(Protocol):
    """Read model of stays indexed by venue and day, and by person (contact tracing)."""

    def drop_before(self, cutoff: datetime) -> int:
        """Drop stays that began before the cutoff."""
        ...

    def stays_at(self, venue_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """Stays at a venue intersecting [t0, t1]."""
        ...

    def stays_of(self, visitor_id: UUID, t0: datetime, t1: datetime, now: datetime) -> list[Stay]:
        """A person's stays intersecting [t0, t1]."""
        ...

    def stays_at_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_at` of each (venue, t0, t1) window, in their order, in one lookup."""
        ...

    def stays_of_many(self, windows: Sequence[Window], now: datetime) -> list[list[Stay]]:
        """`stays_of` of each (visitor, t0, t1) window, in their order, in one lookup."""
        ...


class ExposureLog(Protocol):
    """Read model of declared exposures by venue."""

    def at_venue(self, venue_id: UUID, start: datetime, end: datetime) -> list[ExposureView]:
        """Exposures at a venue overlapping [start, end]."""
        ...


class Listed(msgspec.Struct, frozen=True):
    """One entry of a roster: what was made, and when."""

    at: datetime
    id: UUID


class Roster(Protocol):
    """Read model of what is listed by whom: agencies, auditors, an agency's officers, cases.

    Kinds are `agencies` and `auditors` (no owner), `officers` and `cases` (owner: the agency).
    Entries carry ids only; what they are is read from the log, where it is encrypted.
    """

    def listed(self, kind: str, owner: UUID | None) -> list[Listed]:
        """Entries of one roster, newest first."""
        ...


class AnswerStore(Protocol):
    """Answers to creating requests, kept a day so a retry sees the first answer again."""

    def load(self, scope: str, key: str) -> tuple[str, bytes] | None:
        """(request fingerprint, answer) of an earlier request with this key."""
        ...

    def save(self, scope: str, key: str, fingerprint: str, answer: bytes) -> None: ...


class AuditRecord(msgspec.Struct, frozen=True):
    """One access to case data or one admin action, as the audit trail keeps it."""

    at: datetime
    actor: str
    action: str
    ref: str
    case_id: UUID | None = None
    subject: str | None = None


class AuditTrail(Protocol):
    """The append-only record of who read or decided what; its own store, never derived.

    `record` returns only once the entry is durable, and raises `AuditUnavailableError` when the
    store refuses it, so that nothing it guards is shown or done unrecorded. Recording the same
    `ref` twice keeps the first entry (a retried request is one access).
    """

    def record(self, entry: AuditRecord) -> None:
        """Append the entry durably, or raise `AuditUnavailableError`."""
        ...

    def has(self, ref: str) -> bool:
        """Whether an entry of this reference is on record (raises `AuditUnavailableError`)."""
        ...


class NotStoredError(LookupError):
    """The log holds no aggregate of this id."""


class EventStore(Protocol):
    """The log of every aggregate's events: the one place commands write to.

    A commit returns once the events are durable and the read models show them, so that the
    writer reads its own writes. It raises `ConcurrentChangeError` when another writer changed
    one of the aggregates since it was read, and then stores nothing of them.
    """

    def get(self, aggregate_id: UUID) -> Any:
        """The aggregate as its events make it; raises `NotStoredError`."""
        ...

    def commit(self, *aggregates: Aggregate | None) -> None:
        """Append the aggregates' new events in one transaction."""
        ...

    async def commit_async(self, *aggregates: Aggregate | None) -> None:
        """`commit`, awaited on the event loop without holding a thread."""
        ...

    def exclusive(self, key: UUID) -> AbstractContextManager[None]:
        """Hold back this process's other threads that write for `key` (a person, a venue):
        one person's concurrent requests then see each other's writes, and none of them
        opens a second visit unseen."""
        ...

    def exclusive_async(self, key: UUID) -> AbstractAsyncContextManager[None]:
        """`exclusive` among the tasks of the event loop."""
        ...


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
    regions: Regions
    roster: Roster
