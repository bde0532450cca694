"""Check-in and check-out: scanned codes, parties, superseded visits, the till."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from domain.answers import CheckedIn, CheckedOut
from domain.checkin import CheckInRequest, decide_check_in
from domain.errors import ConcurrentChangeError, ConflictError, InvalidInputError, NotFoundError
from domain.ids import derive_id
from domain.people import Visitor, VisitorErasedError
from domain.ports import NotStoredError, VenueView, VisitView
from domain.service import Service
from domain.venues import CodeKind, InvalidVenueCodeError, VenueCode, VenueCodeRotatedError
from domain.visits import CheckInVia, CheckoutReason, Visit

# How often a check-in looks again after a concurrent change before it gives up (409).
CONFLICT_RETRIES = 6


class WrongCodeKindError(InvalidInputError):
    """A checkout code was scanned to check in."""

    kind = "wrong-code-kind"


class NothingOpenError(ConflictError):
    """There is no open visit to close."""

    kind = "nothing-open"


class VisitCommands(Service):
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

    # -- check-in -------------------------------------------------------------------------

    async def check_in(
        self,
        visitor_id: UUID,
        code_text: str,
        party: Sequence[str],
        idempotency_key: str | None,
    ) -> CheckedIn:
        """Check a visitor (and the dependents named in `party`) in at the code's venue.

        Runs on the event loop: the look at the read side and the commit are awaited. What the
        read side showed is trusted first; after a concurrent change the visits are read from
        the log itself (in a thread), which a stale read model cannot contradict.
        """
        request = self._check_in_request(visitor_id, code_text, party, idempotency_key)
        async with self.store.exclusive_async(visitor_id):
            for attempt in range(CONFLICT_RETRIES):
                from_log = attempt > 0
                seen = await self.ports.visits.look(
                    request.people, request.visit_id if request.idempotent else None
                )
                if request.idempotent:
                    known = None if seen.visit is None else seen.visit.checked_in_at
                    if known is None and from_log:
                        known = await asyncio.to_thread(self._checked_in_at, request.visit_id)
                    if known is not None:
                        return request.answer(request.visit_id, known)
                if from_log:
                    open_visits = await asyncio.to_thread(self._from_log, seen.open_visits)
                else:
                    open_visits = {
                        person: [_resumed(view) for view in views]
                        for person, views in seen.open_visits.items()
                    }
                changed, answer = decide_check_in(request, open_visits, self.ports.clock.now())
                try:
                    await self.store.commit_async(*changed)
                except ConcurrentChangeError:
                    continue  # the same key at once, or a visit closed meanwhile: look again
                return answer
        raise ConcurrentChangeError("a concurrent change got there first; retry")

    def _check_in_request(
        self, visitor_id: UUID, code_text: str, party: Sequence[str], idempotency_key: str | None
    ) -> CheckInRequest:
        venue, code = self.venue_for_code(code_text)
        if code.kind is not CodeKind.ENTRY:
            raise WrongCodeKindError("this is the venue's checkout code; scan the entry poster")
        members: list[tuple[UUID, CheckInVia]] = [(visitor_id, CheckInVia.SCAN)]
        if party:
            visitor = self.ports.directory.visitor(visitor_id)
            if visitor is None:
                raise VisitorErasedError("this visitor's data was erased")
            for name in dict.fromkeys(party):
                dependent_id = self.ports.directory.dependent(visitor, name)
                if dependent_id is None:
                    raise InvalidInputError(
                        "the party names someone who is not a registered dependent"
                    )
                members.append((dependent_id, CheckInVia.PARTY))
        return CheckInRequest(
            visitor_id=visitor_id,
            venue=venue,
            members=tuple(members),
            visit_id=self._new_id(f"visit|{visitor_id}", idempotency_key),
            idempotent=idempotency_key is not None,
        )

    def _checked_in_at(self, visit_id: UUID) -> datetime | None:
        """When a visit began, as the log has it: the read models may be behind (being rebuilt,
        say), while the log is the truth."""
        try:
            visit: Visit = self.store.get(visit_id)
        except NotStoredError:
            return None
        return visit.checked_in_at

    def _from_log(self, open_visits: dict[UUID, list[VisitView]]) -> dict[UUID, list[Visit]]:
        return {
            person: [self.store.get(view.visit_id) for view in views]
            for person, views in open_visits.items()
        }

    # -- check-out ------------------------------------------------------------------------

    def check_out_visit(self, visitor_id: UUID, visit_id: UUID) -> CheckedOut:
        """The visitor closes one of their own visits (reason `manual`)."""
        view = self.ports.visits.get(visit_id)
        if view is None or view.guardian_id != visitor_id:
            raise NotFoundError("no such visit")
        with self.store.exclusive(visitor_id):
            return self._close([view.visit_id], CheckoutReason.MANUAL)[0]

    def check_out_by_code(self, visitor_id: UUID, code_text: str) -> CheckedOut:
        """Close the visitor's (and their party's) open visits at the code's venue."""
        venue, code = self.venue_for_code(code_text)
        reason = CheckoutReason.PAYMENT if code.kind is CodeKind.CHECKOUT else CheckoutReason.SCAN
        with self.store.exclusive(visitor_id):
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
        with self.store.exclusive(view.guardian_id):
            return self._close([visit_id], CheckoutReason.PAYMENT)[0]

    def _close(self, visit_ids: list[UUID], reason: CheckoutReason) -> list[CheckedOut]:
        at = self.ports.clock.now()
        visits: list[Visit] = [self.store.get(i) for i in visit_ids]
        for visit in visits:
            visit.check_out(at, reason)
        self.store.commit(*visits)
        return [
            CheckedOut(
                visit_id=v.id,
                checked_out_at=v.checked_out_at or at,
                dwell_seconds=v.dwell_seconds or 0,
            )
            for v in visits
        ]

    # -- at the counter -------------------------------------------------------------------

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
        request = CheckInRequest(
            visitor_id=visitor_id,
            venue=venue,
            members=((visitor_id, CheckInVia.ASSISTED),),
            visit_id=visit_id,
            idempotent=True,
        )
        known = self.ports.visits.get(visit_id)
        if known is not None:
            return request.answer(known.visit_id, known.checked_in_at)
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
        changed, answer = decide_check_in(request, {}, at)
        try:
            self.store.commit(visitor, *changed)
        except ConcurrentChangeError:  # a concurrent retry with the same key stored it first
            # Perhaps in another worker, not projected yet: then the log says so.
            stored_at = self._checked_in_at(visit_id)
            if stored_at is None:
                raise
            return request.answer(visit_id, stored_at)
        return answer


def _resumed(view: VisitView) -> Visit:
    return Visit.resume(
        id=view.visit_id,
        visitor_id=view.visitor_id,
        guardian_id=view.guardian_id,
        venue_id=view.venue_id,
        at=view.checked_in_at,
        via=view.via,
    )
