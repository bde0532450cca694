"""Check-in and check-out: scanned codes, parties, superseded visits, the till."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.commands import CONFLICT_RETRIES, CheckedIn, CheckedOut, Look, Steps, derive_id
from domain.errors import ConflictError, InvalidInputError, NotFoundError
from domain.people import Visitor, VisitorErasedError
from domain.ports import VenueView, VisitView
from domain.runtime import Runtime
from domain.venues import CodeKind, InvalidVenueCodeError, VenueCode, VenueCodeRotatedError
from domain.visits import CheckInVia, CheckoutReason, Visit


class WrongCodeKindError(InvalidInputError):
    """A checkout code was scanned to check in."""

    kind = "wrong-code-kind"


class NothingOpenError(ConflictError):
    """There is no open visit to close."""

    kind = "nothing-open"


class VisitCommands(Runtime):
    """The commands that open and close visits."""

    def owned_venue(self, merchant_id: UUID, venue_id: UUID) -> VenueView:
        """A venue, only for its owner; anyone else learns nothing (404)."""
        venue = self.ports.directory.venue(venue_id)
        if venue is None or venue.merchant_id != merchant_id:
            raise NotFoundError("no such venue")
        return venue

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
            dependent_id = self.ports.directory.dependent(visitor, name)
            if dependent_id is None:
                raise InvalidInputError("the party names someone who is not a registered dependent")
            members.append((dependent_id, CheckInVia.PARTY))
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
            # Perhaps in another worker, not projected yet: then the log says so.
            stored = self._known_visit(self.ports.visits.get(visit_id), visit_id, from_log=True)
            if stored is None:
                raise ConflictError("a concurrent change got there first; retry") from None
            return self._answer(stored[0], stored[1], venue, [])
        return self._answer(visit_id, at, venue, [])
