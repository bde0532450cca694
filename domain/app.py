"""The Fangxin application: the commands and queries of shoppers and merchants."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)

from domain.errors import ConflictError, InvalidInputError, NotFoundError
from domain.people import Merchant, Visitor, VisitorErasedError
from domain.ports import (
    Clock,
    CodeSigner,
    Committer,
    ContactIndex,
    Credentials,
    Directory,
    ExposureLog,
    Ids,
    KeyShredder,
    ReadModelSync,
    Seen,
    VenueView,
    VisitLog,
    VisitView,
)
from domain.stats import Bucket, BucketStats, StatsVisit, venue_stats
from domain.venues import (
    CodeKind,
    InvalidVenueCodeError,
    Venue,
    VenueCode,
    VenueCodeRotatedError,
)
from domain.visits import CheckInVia, CheckoutReason, Visit

# Ids derived from (principal, Idempotency-Key): a retried request finds what it made before.
# The inputs are pseudonymous ids and client keys, never personal data.
ID_NAMESPACE = UUID("6f1c2a8e-3d0b-5c57-9a51-0e4d2f6b7a10")
MAX_VISITS_WINDOW = timedelta(days=93)
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


class WrongCodeKindError(InvalidInputError):
    """A checkout code was scanned to check in."""

    kind = "wrong-code-kind"


class NothingOpenError(ConflictError):
    """There is no open visit to close."""

    kind = "nothing-open"


class IdempotencyKeyReusedError(ConflictError):
    """The key was used before for something this answer cannot repeat."""

    kind = "idempotency-key-reused"


class WindowError(InvalidInputError):
    """A time window is empty, reversed or too long."""

    kind = "invalid-window"


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


class Fangxin(Application[UUID]):
    """Commands write aggregates to the log; queries read the read models."""

    name = "fangxin"

    def __init__(
        self, ports: Ports, env: dict[str, str] | None = None, mapper: Mapper[Any] | None = None
    ) -> None:
        self._injected_mapper = mapper
        self.ports = ports
        self.committer: Committer | None = None
        self._locks = [threading.Lock() for _ in range(256)]
        self._async_locks = [asyncio.Lock() for _ in range(256)]
        super().__init__(env)

    # -- wiring ---------------------------------------------------------------------------

    def construct_mapper(self) -> Mapper[Any]:
        """Use the composition root's mapper (scoped encryption) when one is given."""
        if self._injected_mapper is not None:
            return self._injected_mapper
        return super().construct_mapper()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """The library's transcodings, and dates."""
        for transcoding in transcodings():
            transcoder.register(transcoding)

    def _lock(self, key: UUID) -> threading.Lock:
        return self._locks[key.int % len(self._locks)]

    def _async_lock(self, key: UUID) -> asyncio.Lock:
        # Only spares needless conflicts between one person's concurrent check-ins on this
        # event loop; correctness rests on optimistic concurrency, as across processes.
        return self._async_locks[key.int % len(self._async_locks)]

    def commit(self, *aggregates: Aggregate | None) -> None:
        """Append the aggregates' new events durably, then wait for the read models."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return
        if self.committer is not None:
            recordings = self.committer.save(self.mapped(events))
        else:
            recordings = self.save(*events)
        self.ports.sync.written(recordings)

    def mapped(self, events: Sequence[Any]) -> list[Mapped]:
        """Events with their stored forms, ready for `record`."""
        to_stored = self.mapper.to_stored_event
        return [Mapped(event, to_stored(event)) for event in events]

    def record(self, *items: Mapped) -> list[Recording[UUID]]:
        """Append mapped events in one transaction: what the group commit calls with a batch.

        `EventStore.put` for events mapped already by their writers.
        """
        ids = self.recorder.insert_events([item.stored for item in items])
        if not ids:
            return []
        return [
            Recording(
                event,
                Notification(
                    id=notification_id,
                    originator_id=stored.originator_id,
                    originator_version=stored.originator_version,
                    topic=stored.topic,
                    state=stored.state,
                ),
            )
            for (event, stored), notification_id in zip(items, ids, strict=True)
        ]

    def run(self, steps: Steps[T], conflict: IntegrityError | None = None) -> T:
        """Drive a command: answer its looks, commit what it hands over, throw conflicts back."""
        seen: Seen | None = None
        try:
            while True:
                step = steps.throw(conflict) if conflict else steps.send(seen)
                conflict, seen = None, None
                if isinstance(step, Look):
                    seen = self._look(step)
                    continue
                try:
                    self.commit(*step)
                except IntegrityError as exc:
                    conflict = exc
        except StopIteration as done:
            result: T = done.value
            return result

    async def run_async(self, steps: Steps[T]) -> T:
        """`run` for the event loop: reads and commits are awaited, no thread is held.

        After a conflict the command looks again in the log itself, which blocks: the rest of
        it runs in a thread (conflicts are rare, the first attempt is the hot path).
        """
        seen: Seen | None = None
        try:
            while True:
                step = steps.send(seen)
                seen = None
                if isinstance(step, Look):
                    seen = await self.ports.visits.look(step.people, step.visit_id)
                    continue
                try:
                    await self.commit_async(*step)
                except IntegrityError as exc:
                    return await asyncio.to_thread(self.run, steps, exc)
        except StopIteration as done:
            result: T = done.value
            return result

    def _look(self, look: Look) -> Seen:
        visits = self.ports.visits
        return Seen(
            open_visits={person: visits.open_of(person) for person in look.people},
            visit=None if look.visit_id is None else visits.get(look.visit_id),
        )

    async def commit_async(self, *aggregates: Aggregate | None) -> None:
        """`commit` whose wait for durability is awaited (read models in this process)."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return
        if self.committer is not None:
            recordings = await self.committer.save_async(self.mapped(events))
        else:
            recordings = self.save(*events)
        await self.ports.sync.written_async(recordings)

    # -- visitors and merchants -----------------------------------------------------------

    def register_visitor(
        self, name: str, phone: str, dependents: Sequence[str], idempotency_key: str | None
    ) -> Registration:
        """Register a shopper; every registration is a new pseudonymous visitor."""
        if len(set(dependents)) != len(dependents):
            raise InvalidInputError("dependents must have distinct names")
        visitor_id = self._new_id("visitor", idempotency_key)
        token, token_hash = self.ports.credentials.new_token()
        visitor = Visitor(
            id=visitor_id,
            name=name,
            phone=phone,
            phone_index=self.ports.credentials.phone_index(phone),
            token_hash=token_hash,
            dependent_ids=[self.ports.ids.new() for _ in dependents],
            dependent_names=list(dependents),
            assisted=False,
        )
        self.create(visitor)
        return Registration(id=visitor_id, token=token)

    def register_merchant(
        self, name: str, contact_phone: str, idempotency_key: str | None
    ) -> Registration:
        """Register a merchant."""
        merchant_id = self._new_id("merchant", idempotency_key)
        token, token_hash = self.ports.credentials.new_token()
        self.create(
            Merchant(id=merchant_id, name=name, contact_phone=contact_phone, token_hash=token_hash)
        )
        return Registration(id=merchant_id, token=token)

    def _new_id(self, kind: str, idempotency_key: str | None) -> UUID:
        if idempotency_key is None:
            return self.ports.ids.new()
        return derive_id(kind, idempotency_key)

    def create(self, aggregate: Aggregate) -> None:
        """Save a new aggregate whose id may derive from an Idempotency-Key."""
        try:
            self.commit(aggregate)
        except IntegrityError:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used already; its answer cannot be repeated"
            ) from None

    def erase_visitor(self, visitor_id: UUID) -> None:
        """Erase a visitor: record it, then destroy their key (shredding name, phone, visits)."""
        with self._lock(visitor_id):
            visitor = self._visitor(visitor_id)
            visitor.erase(self.ports.clock.now())
            self.commit(visitor)
            self.ports.keys.destroy_visitor(visitor_id)

    def _visitor(self, visitor_id: UUID) -> Visitor:
        try:
            visitor: Visitor = self.repository.get(visitor_id)
        except AggregateNotFoundError:
            raise NotFoundError("no such visitor") from None
        if visitor.erased or visitor.forgotten:
            raise VisitorErasedError("this visitor's data was erased")
        return visitor

    # -- venues ---------------------------------------------------------------------------

    def register_venue(
        self,
        merchant_id: UUID,
        name: str,
        address: str,
        region: str,
        category: str,
        capacity: int | None,
        max_dwell_minutes: int,
        idempotency_key: str | None,
    ) -> UUID:
        """Register a venue of a merchant; returns its id."""
        venue_id = self._new_id(f"venue|{merchant_id}", idempotency_key)
        if idempotency_key is not None and self.ports.directory.venue(venue_id) is not None:
            return venue_id
        venue = Venue(
            id=venue_id,
            merchant_id=merchant_id,
            name=name,
            address=address,
            region=region,
            category=category,
            capacity=capacity,
            max_dwell_minutes=max_dwell_minutes,
        )
        with contextlib.suppress(IntegrityError):  # the same key at the same time: one made it
            self.commit(venue)
        return venue_id

    def owned_venue(self, merchant_id: UUID, venue_id: UUID) -> VenueView:
        """A venue, only for its owner; anyone else learns nothing (404)."""
        venue = self.ports.directory.venue(venue_id)
        if venue is None or venue.merchant_id != merchant_id:
            raise NotFoundError("no such venue")
        return venue

    def venues_of(self, merchant_id: UUID) -> list[VenueView]:
        """A merchant's own venues."""
        return self.ports.directory.venues_of(merchant_id)

    def codes_of(self, venue: VenueView) -> VenueCodes:
        """The current entry and checkout codes of a venue."""
        issue = self.ports.codes.issue
        return VenueCodes(
            code=issue(venue.venue_id, CodeKind.ENTRY, venue.code_version),
            checkout_code=issue(venue.venue_id, CodeKind.CHECKOUT, venue.code_version),
        )

    def rotate_codes(self, merchant_id: UUID, venue_id: UUID) -> VenueView:
        """Replace a venue's codes; the old ones are refused from now on."""
        self.owned_venue(merchant_id, venue_id)
        with self._lock(venue_id):
            venue: Venue = self.repository.get(venue_id)
            venue.rotate_codes()
            self.commit(venue)
        return self.owned_venue(merchant_id, venue_id)

    def venue_for_code(self, code_text: str) -> tuple[VenueView, VenueCode]:
        """The venue a scanned code names, refusing forged, unknown and rotated codes."""
        code = self.ports.codes.read(code_text)
        venue = self.ports.directory.venue(code.venue_id)
        if venue is None:
            raise InvalidVenueCodeError("this code names no venue")
        if code.key_version != venue.code_version:
            raise VenueCodeRotatedError("this venue code was replaced; scan the current poster")
        return venue, code

    # -- check-in and check-out -----------------------------------------------------------

    def check_in(
        self,
        visitor_id: UUID,
        code_text: str,
        party: Sequence[str],
        idempotency_key: str | None,
    ) -> CheckedIn:
        """Check a visitor (and the dependents named in `party`) in at the code's venue."""
        with self._lock(visitor_id):
            return self.run(self._check_in_steps(visitor_id, code_text, party, idempotency_key))

    async def check_in_async(
        self,
        visitor_id: UUID,
        code_text: str,
        party: Sequence[str],
        idempotency_key: str | None,
    ) -> CheckedIn:
        """`check_in` on the event loop: its reads and its group commit are awaited."""
        async with self._async_lock(visitor_id):
            steps = self._check_in_steps(visitor_id, code_text, party, idempotency_key)
            return await self.run_async(steps)

    def _check_in_steps(
        self,
        visitor_id: UUID,
        code_text: str,
        party: Sequence[str],
        idempotency_key: str | None,
    ) -> Steps[CheckedIn]:
        venue, code = self.venue_for_code(code_text)
        if code.kind is not CodeKind.ENTRY:
            raise WrongCodeKindError("this is the venue's checkout code; scan the entry poster")
        members: list[tuple[UUID, CheckInVia]] = [(visitor_id, CheckInVia.SCAN)]
        visitor = self.ports.directory.visitor(visitor_id) if party else None
        if party and visitor is None:
            raise VisitorErasedError("this visitor's data was erased")
        for name in dict.fromkeys(party):
            assert visitor is not None
            if name not in visitor.dependents:
                raise InvalidInputError("the party names someone who is not a registered dependent")
            members.append((visitor.dependents[name], CheckInVia.PARTY))
        visit_id = self._new_id(f"visit|{visitor_id}", idempotency_key)
        people = tuple(member for member, _ in members)
        for attempt in range(CONFLICT_RETRIES):
            seen = yield Look(people, visit_id if idempotency_key is not None else None)
            assert seen is not None
            if idempotency_key is not None:
                known = self._known_visit(seen.visit, visit_id, from_log=attempt > 0)
                if known is not None:
                    return self._answer(known[0], known[1], venue, members)
            # Every check-in is a new visit; an open one (even here) is superseded. A double
            # tap is not a new check-in: clients send an Idempotency-Key for that.
            at = self.ports.clock.now()
            changed: list[Aggregate] = []
            for member_id, via in members:
                current = seen.open_visits[member_id]
                # First from the read side; after a conflict, from the log itself.
                changed.extend(self._supersede(current, at, from_log=attempt > 0))
                changed.append(
                    Visit(
                        id=self._member_visit_id(visit_id, visitor_id, member_id),
                        visitor_id=member_id,
                        guardian_id=visitor_id,
                        venue_id=venue.venue_id,
                        at=at,
                        via=via.value,
                    )
                )
            try:
                yield changed
            except IntegrityError:
                continue  # the same key at once, or a visit closed meanwhile: look again
            return self._answer(visit_id, at, venue, members)
        raise ConflictError("a concurrent change got there first; retry")

    def _known_visit(
        self, view: VisitView | None, visit_id: UUID, from_log: bool
    ) -> tuple[UUID, datetime] | None:
        """An earlier check-in with this key: as the read side saw it, or from the log itself
        (the read models may be behind, e.g. being rebuilt, while the log is the truth)."""
        if view is not None:
            return view.visit_id, view.checked_in_at
        if not from_log:
            return None
        try:
            visit: Visit = self.repository.get(visit_id)
        except AggregateNotFoundError:
            return None
        return visit.id, visit.checked_in_at

    @staticmethod
    def _member_visit_id(visit_id: UUID, visitor_id: UUID, member_id: UUID) -> UUID:
        return visit_id if member_id == visitor_id else derive_id("party", visit_id, member_id)

    def _answer(
        self,
        visit_id: UUID,
        at: datetime,
        venue: VenueView,
        members: Sequence[tuple[UUID, CheckInVia]],
    ) -> CheckedIn:
        party = [derive_id("party", visit_id, member) for member, _ in members[1:]]
        return CheckedIn(visit_id=visit_id, venue=venue, checked_in_at=at, party_visit_ids=party)

    def _supersede(
        self, open_visits: list[VisitView], at: datetime, from_log: bool = False
    ) -> list[Visit]:
        # Rebuilt from the read side (an open visit is at version 1): if it changed meanwhile,
        # saving conflicts and the check-in looks again, then from the log (optimistic
        # concurrency: a stale read model never overwrites anything).
        closed: list[Visit] = []
        for view in open_visits:
            if from_log:
                stored: Visit = self.repository.get(view.visit_id)
                if stored.is_open:
                    stored.check_out(at, CheckoutReason.SUPERSEDED)
                    closed.append(stored)
                continue
            visit = Visit.resume(
                id=view.visit_id,
                visitor_id=view.visitor_id,
                guardian_id=view.guardian_id,
                venue_id=view.venue_id,
                at=view.checked_in_at,
                via=view.via,
            )
            visit.check_out(at, CheckoutReason.SUPERSEDED)
            closed.append(visit)
        return closed

    def check_out_visit(self, visitor_id: UUID, visit_id: UUID) -> CheckedOut:
        """The visitor closes one of their own visits (reason `manual`)."""
        view = self.ports.visits.get(visit_id)
        if view is None or view.guardian_id != visitor_id:
            raise NotFoundError("no such visit")
        with self._lock(visitor_id):
            return self._close([view.visit_id], CheckoutReason.MANUAL)[0]

    def check_out_by_code(self, visitor_id: UUID, code_text: str) -> CheckedOut:
        """Close the visitor's (and their party's) open visits at the code's venue."""
        venue, code = self.venue_for_code(code_text)
        reason = CheckoutReason.PAYMENT if code.kind is CodeKind.CHECKOUT else CheckoutReason.SCAN
        with self._lock(visitor_id):
            visitor = self.ports.directory.visitor(visitor_id)
            people = [visitor_id, *(visitor.dependents.values() if visitor else ())]
            open_here = [
                v.visit_id
                for person in people
                for v in self.ports.visits.open_of(person)
                if v.venue_id == venue.venue_id
            ]
            if not open_here:
                raise NothingOpenError("no open visit at this venue")
            return self._close(open_here, reason)[0]

    def till_check_out(self, merchant_id: UUID, venue_id: UUID, visit_id: UUID) -> CheckedOut:
        """The venue's till closes a visit it was shown (reason `payment`)."""
        self.owned_venue(merchant_id, venue_id)
        view = self.ports.visits.get(visit_id)
        if view is None or view.venue_id != venue_id:
            raise NotFoundError("no such visit at this venue")
        with self._lock(view.guardian_id):
            return self._close([visit_id], CheckoutReason.PAYMENT)[0]

    def _close(self, visit_ids: list[UUID], reason: CheckoutReason) -> list[CheckedOut]:
        at = self.ports.clock.now()
        visits: list[Visit] = [self.repository.get(i) for i in visit_ids]
        for visit in visits:
            visit.check_out(at, reason)
        self.commit(*visits)
        return [
            CheckedOut(
                visit_id=v.id,
                checked_out_at=v.checked_out_at or at,
                dwell_seconds=v.dwell_seconds or 0,
            )
            for v in visits
        ]

    def assisted_check_in(
        self,
        merchant_id: UUID,
        venue_id: UUID,
        name: str,
        phone: str,
        idempotency_key: str | None,
    ) -> CheckedIn:
        """Check in a person without a phone, at the venue's counter."""
        venue = self.owned_venue(merchant_id, venue_id)
        visitor_id = self._new_id(f"assisted|{venue_id}", idempotency_key)
        visit_id = derive_id("assisted-visit", visitor_id)
        known = self.ports.visits.get(visit_id)
        if known is not None:
            return self._answer(known.visit_id, known.checked_in_at, venue, [])
        at = self.ports.clock.now()
        visitor = Visitor(
            id=visitor_id,
            name=name,
            phone=phone,
            phone_index=self.ports.credentials.phone_index(phone),
            token_hash="",
            dependent_ids=[],
            dependent_names=[],
            assisted=True,
        )
        visit = Visit(
            id=visit_id,
            visitor_id=visitor_id,
            guardian_id=visitor_id,
            venue_id=venue_id,
            at=at,
            via=CheckInVia.ASSISTED.value,
        )
        try:
            self.commit(visitor, visit)
        except IntegrityError:  # a concurrent retry with the same key stored it first
            stored = self.ports.visits.get(visit_id)
            if stored is None:
                raise ConflictError("a concurrent change got there first; retry") from None
            return self._answer(stored.visit_id, stored.checked_in_at, venue, [])
        return self._answer(visit_id, at, venue, [])

    # -- background duties ----------------------------------------------------------------

    def auto_check_out(self, batch: int = 500) -> int:
        """Close every open visit whose venue's maximum dwell has passed (reason `auto`)."""
        closed = 0
        while True:
            due = self.ports.visits.due(self.ports.clock.now(), batch)
            if not due:
                return closed
            visits: list[Visit] = []
            for view in due:
                venue = self.ports.directory.venue(view.venue_id)
                max_dwell = timedelta(minutes=venue.max_dwell_minutes if venue else 180)
                with self._lock(view.guardian_id):
                    visit: Visit = self.repository.get(view.visit_id)
                    if visit.is_open:
                        visit.check_out(view.checked_in_at + max_dwell, CheckoutReason.AUTO)
                        visits.append(visit)
            try:
                self.commit(*visits)
            except IntegrityError:
                continue  # someone closed one of them meanwhile: look again
            closed += len(visits)
            if len(due) < batch:
                return closed

    def apply_retention(self, retention_days: int) -> int:
        """Shred the days older than the retention period and drop them from the read models."""
        today = self.ports.clock.now().date()
        cutoff_day = today - timedelta(days=retention_days)
        self.ports.keys.destroy_days_before(cutoff_day)
        cutoff = datetime(cutoff_day.year, cutoff_day.month, cutoff_day.day, tzinfo=ZoneInfo("UTC"))
        dropped = self.ports.visits.drop_before(cutoff)
        self.ports.contacts.drop_before(cutoff)
        return dropped

    # -- queries --------------------------------------------------------------------------

    def visits_of(self, visitor_id: UUID, start: datetime, end: datetime) -> list[VisitView]:
        """A visitor's own visits (with their dependents'), oldest first."""
        if end <= start or end - start > MAX_VISITS_WINDOW:
            raise WindowError("`to` must follow `from`, at most 93 days later")
        return self.ports.visits.of_guardian(visitor_id, start, end)

    def venue_stats(
        self,
        merchant_id: UUID,
        venue_id: UUID,
        start: datetime,
        end: datetime,
        bucket: Bucket,
        tz: ZoneInfo,
    ) -> tuple[list[BucketStats], BucketStats]:
        """Dwell statistics of an owned venue, never naming a visitor."""
        self.owned_venue(merchant_id, venue_id)
        if end <= start:
            raise WindowError("`to` must follow `from`")
        visits = [
            StatsVisit(
                visitor_id=v.visitor_id,
                checked_in_at=v.checked_in_at,
                checked_out_at=v.checked_out_at,
                checkout_reason=v.checkout_reason,
            )
            for v in self.ports.visits.at_venue(venue_id, start, end)
        ]
        return venue_stats(visits, start, end, bucket, tz)

    def occupancy(self, merchant_id: UUID, venue_id: UUID) -> tuple[int, int | None]:
        """How many people are in an owned venue now, and its capacity."""
        venue = self.owned_venue(merchant_id, venue_id)
        return self.ports.visits.occupancy(venue_id), venue.capacity
