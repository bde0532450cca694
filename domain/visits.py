"""The Visit aggregate: one person at one venue, from check-in to check-out."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError


class CheckInVia(StrEnum):
    """How a check-in was made."""

    SCAN = "scan"
    ASSISTED = "assisted"
    PARTY = "party"


class CheckoutReason(StrEnum):
    """Why a visit was closed (API.md, "Checkout reasons")."""

    SCAN = "scan"
    PAYMENT = "payment"
    SUPERSEDED = "superseded"
    AUTO = "auto"
    MANUAL = "manual"


class VisitAlreadyClosedError(ConflictError):
    """The visit was closed before."""

    kind = "visit-already-closed"


# Cached: a check-in asks for the scopes of each event several times, and formatting is costly.
@lru_cache(maxsize=8192)
def visit_scopes(guardian_id: UUID, day: date) -> tuple[str, ...]:
    """A visit is personal data of its guardian and belongs to its UTC day.

    Its events are encrypted under both keys: erasing the visitor or letting the day pass
    retention makes the visit unreadable. The day comes first: the store shows only the first
    scope's key id, which all visits of a day share, so that no key id links one person's rows.
    """
    return (f"day:{day.isoformat()}", f"visitor:{guardian_id}")


class Visit(Aggregate):
    """A stay at a venue; its id derives from the visitor and the client's idempotency key."""

    forgotten = False
    checked_out_at: datetime | None = None
    checkout_reason: CheckoutReason | None = None

    class CheckedIn(Aggregate.Created):
        """A person entered a venue."""

        visitor_id: UUID
        guardian_id: UUID
        venue_id: UUID
        at: datetime
        via: str

        @property
        def privacy_scopes(self) -> tuple[str, ...]:
            """Keys this event is encrypted under."""
            return visit_scopes(self.guardian_id, self.at.date())

    class CheckedOut(Aggregate.Event):
        """The person left (or the visit was closed for them)."""

        guardian_id: UUID
        day: date
        at: datetime
        reason: str

        @property
        def privacy_scopes(self) -> tuple[str, ...]:
            """Keys this event is encrypted under."""
            return visit_scopes(self.guardian_id, self.day)

    @event(CheckedIn)
    def __init__(
        self, id: UUID, visitor_id: UUID, guardian_id: UUID, venue_id: UUID, at: datetime, via: str
    ) -> None:
        self.visitor_id = visitor_id
        self.guardian_id = guardian_id
        self.venue_id = venue_id
        self.checked_in_at = at
        self.via = CheckInVia(via)
        self.checked_out_at = None
        self.checkout_reason = None

    @classmethod
    def resume(
        cls, id: UUID, visitor_id: UUID, guardian_id: UUID, venue_id: UUID, at: datetime, via: str
    ) -> Visit:
        """An open visit as the read side knows it: checked in (version 1), not out yet.

        Spares a check-in reading the log; a change saved to it conflicts when the visit
        changed meanwhile, so a stale read model can never overwrite anything.
        """
        # Built without its creation event, which was committed long ago.
        visit = cls.__new__(cls)
        visit.__base_init__(originator_id=id, originator_version=1, timestamp=at)
        visit.visitor_id = visitor_id
        visit.guardian_id = guardian_id
        visit.venue_id = venue_id
        visit.checked_in_at = at
        visit.via = CheckInVia(via)
        visit.checked_out_at = None
        visit.checkout_reason = None
        return visit

    @property
    def is_open(self) -> bool:
        """Whether the person is still there."""
        return self.checked_out_at is None and not self.forgotten

    def check_out(self, at: datetime, reason: CheckoutReason) -> None:
        """Close the visit; a check-out before the check-in is taken as the check-in time."""
        if not self.is_open:
            raise VisitAlreadyClosedError("this visit is already closed")
        self._checked_out(
            guardian_id=self.guardian_id,
            day=self.checked_in_at.date(),
            at=max(at, self.checked_in_at),
            reason=reason.value,
        )

    @event(CheckedOut)
    def _checked_out(self, guardian_id: UUID, day: date, at: datetime, reason: str) -> None:
        self.checked_out_at = at
        self.checkout_reason = CheckoutReason(reason)

    @property
    def dwell_seconds(self) -> int | None:
        """Seconds between check-in and check-out, once closed."""
        if self.checked_out_at is None:
            return None
        return int((self.checked_out_at - self.checked_in_at).total_seconds())
