"""The check-in rule: given who checks in where, and what is open now, what to record.

Every check-in is a new visit, for the visitor and for each dependent of the party; whatever
visit of theirs is still open, here or elsewhere, is closed as superseded. A double tap is not a
new check-in: clients send an Idempotency-Key for that, and the visit it made is answered again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.answers import CheckedIn
from domain.ids import derive_id
from domain.ports import VenueView
from domain.visits import CheckInVia, CheckoutReason, Visit


@dataclass(frozen=True)
class CheckInRequest:
    """A check-in once its code and party are known to be valid."""

    visitor_id: UUID
    venue: VenueView
    # The visitor first, then each dependent of the party.
    members: tuple[tuple[UUID, CheckInVia], ...]
    visit_id: UUID
    # Whether `visit_id` derives from an Idempotency-Key (a retry may find it made already).
    idempotent: bool

    @property
    def people(self) -> tuple[UUID, ...]:
        """Everyone who checks in."""
        return tuple(member for member, _ in self.members)

    def visit_id_of(self, member_id: UUID) -> UUID:
        """A member's visit: the request's own for the visitor, derived from it for the party."""
        if member_id == self.visitor_id:
            return self.visit_id
        return derive_id("party", self.visit_id, member_id)

    def answer(self, visit_id: UUID, at: datetime) -> CheckedIn:
        """The answer for the check-in that made `visit_id` at `at`."""
        return CheckedIn(
            visit_id=visit_id,
            venue=self.venue,
            checked_in_at=at,
            party_visit_ids=[self.visit_id_of(member) for member, _ in self.members[1:]],
        )


def decide_check_in(
    request: CheckInRequest, open_visits: Mapping[UUID, Sequence[Visit]], now: datetime
) -> tuple[list[Visit], CheckedIn]:
    """The visits to commit (the superseded ones closed, the new ones) and the answer.

    `open_visits` holds each member's visits that were open when last seen; one closed since is
    left as it is.
    """
    changed: list[Visit] = []
    for member_id, via in request.members:
        for visit in open_visits.get(member_id, ()):
            if visit.is_open:
                visit.check_out(now, CheckoutReason.SUPERSEDED)
                changed.append(visit)
        changed.append(
            Visit(
                id=request.visit_id_of(member_id),
                visitor_id=member_id,
                guardian_id=request.visitor_id,
                venue_id=request.venue.venue_id,
                at=now,
                via=via.value,
            )
        )
    return changed, request.answer(request.visit_id, now)
