"""The Case aggregate (open, approve or reject, access) and the ExposureNotice."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError

MAX_CASE_WINDOW = timedelta(days=28)
# How long an approved case stays readable unless its approval says otherwise.
DEFAULT_CASE_LIFETIME = timedelta(days=14)


def region_covers(jurisdiction_code: str, region: str) -> bool:
    """A code ending in `00` covers every code sharing its prefix (`110100` covers `110105`).

    A code that is all zeros leaves no prefix and covers nothing: no code stands for the
    whole country.
    """
    prefix = jurisdiction_code
    while prefix.endswith("00") and prefix:
        prefix = prefix[:-2]
    return bool(prefix) and region.startswith(prefix)


def in_jurisdiction(jurisdiction: list[str], region: str) -> bool:
    """Whether a region lies inside any code of a jurisdiction."""
    return any(region_covers(code, region) for code in jurisdiction)


class CaseStatus(StrEnum):
    """Where a case stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"
    EXPIRED = "expired"


class CaseNotApprovedError(ConflictError):
    """Case data is read only once a supervisor approved the case."""

    kind = "case-not-approved"


class CaseAlreadyDecidedError(ConflictError):
    """The case was approved or rejected before."""

    kind = "case-already-decided"


class CaseClosedError(ConflictError):
    """The case was closed by an officer or expired: its data is read no more."""

    kind = "case-closed"


class FourEyesError(ForbiddenError):
    """The opener of a case cannot approve it."""

    kind = "four-eyes"


class CaseWindowError(InvalidInputError):
    """The window of a case is reversed, too long, in the future or past retention."""

    kind = "invalid-case-window"


class NotListedContactError(NotFoundError):
    """Details are only given for a visitor a contacts answer of this case listed."""

    kind = "not-a-listed-contact"


class CasePolicy(msgspec.Struct, frozen=True):
    """How far back a case may look, how long it stays open, and the clock skew forgiven."""

    retention: timedelta = timedelta(days=28)
    lifetime: timedelta = DEFAULT_CASE_LIFETIME
    skew: timedelta = timedelta(minutes=1)


class Case(Aggregate):
    """A confirmed person's case: every read of its data is recorded as an event."""

    forgotten = False
    status = CaseStatus.PENDING
    approved_by: UUID | None = None
    expires_at: datetime | None = None

    class Opened(Aggregate.Created):
        """A tracer opened a case for an index person."""

        agency_id: UUID
        opened_by: UUID
        index_ids: list[UUID]
        start: datetime
        end: datetime
        legal_basis: str
        # Added later: cases opened before have neither (see `opened_on`).
        opened_at: datetime | None = None
        index_by: str = ""

    class Approved(Aggregate.Event):
        """A supervisor approved the case."""

        by: UUID
        reason: str
        at: datetime

    class Rejected(Aggregate.Event):
        """A supervisor rejected the case."""

        by: UUID
        reason: str
        at: datetime

    class Closed(Aggregate.Event):
        """An officer of the agency closed the case; its data is read no more."""

        by: UUID
        reason: str
        at: datetime

    class Accessed(Aggregate.Event):
        """Someone read case data (or declared an exposure from it)."""

        by: UUID
        what: str
        subject: str | None
        listed: list[UUID]
        at: datetime

    @event(Opened)
    def __init__(
        self,
        id: UUID,
        agency_id: UUID,
        opened_by: UUID,
        index_ids: list[UUID],
        start: datetime,
        end: datetime,
        legal_basis: str,
        opened_at: datetime | None = None,
        index_by: str = "",
    ) -> None:
        self.agency_id = agency_id
        self.opened_by = opened_by
        self.index_ids = list(index_ids)
        self.start = start
        self.end = end
        self.legal_basis = legal_basis
        self.opened_at = opened_at
        # How the tracer named the index person: `phone` or `visitor_id` (never the phone).
        self.index_by = index_by
        self.status = CaseStatus.PENDING
        self.approved_by = None
        self.listed: set[UUID] = set()

    @staticmethod
    def check_window(start: datetime, end: datetime, now: datetime, policy: CasePolicy) -> None:
        """Refuse a window that runs backwards, is too long, looks ahead or past retention."""
        try:
            if end <= start or end - start > MAX_CASE_WINDOW:
                raise CaseWindowError("the case window must run forwards, at most 28 days")
            # A case reads what happened; a window into the future would be live tracking.
            if end > now + policy.skew:
                raise CaseWindowError("the case window cannot end in the future")
            if start < now - policy.retention:
                raise CaseWindowError(
                    f"the case window cannot start before the retention period"
                    f" ({policy.retention.days} days): that data is gone"
                )
        except OverflowError:
            raise CaseWindowError("the case window lies outside the calendar") from None

    def decide(
        self, by: UUID, approve: bool, reason: str, at: datetime, lifetime: timedelta
    ) -> None:
        """Approve (for `lifetime`) or reject: once, and never by the officer who opened it."""
        if self.status is not CaseStatus.PENDING:
            raise CaseAlreadyDecidedError("this case was decided already")
        if by == self.opened_by:
            raise FourEyesError("the officer who opened a case cannot decide it")
        if approve:
            self._approved(by=by, reason=reason, at=at, expires_at=at + lifetime)
        else:
            self._rejected(by=by, reason=reason, at=at)

    @event(Approved)
    def _approved(
        self, by: UUID, reason: str, at: datetime, expires_at: datetime | None = None
    ) -> None:
        self.status = CaseStatus.APPROVED
        self.approved_by = by
        # Approvals recorded before cases expired get the default lifetime.
        self.expires_at = expires_at or at + DEFAULT_CASE_LIFETIME

    @event(Rejected)
    def _rejected(self, by: UUID, reason: str, at: datetime) -> None:
        self.status = CaseStatus.REJECTED

    def status_at(self, now: datetime) -> CaseStatus:
        """Where the case stands now: an approved case past its lifetime has expired."""
        if (
            self.status is CaseStatus.APPROVED
            and self.expires_at is not None
            and now >= self.expires_at
        ):
            return CaseStatus.EXPIRED
        return self.status

    def require_readable(self, now: datetime) -> None:
        """Case data is readable only while the case is approved, not closed and not expired."""
        status = self.status_at(now)
        if status in (CaseStatus.CLOSED, CaseStatus.EXPIRED):
            raise CaseClosedError(f"the case is {status.value}; its data is read no more")
        if status is not CaseStatus.APPROVED:
            raise CaseNotApprovedError(f"the case is {status.value}; its data is closed")

    def close(self, by: UUID, reason: str, at: datetime) -> None:
        """Close a pending or approved case for good; nothing of it is read afterwards."""
        if self.status in (CaseStatus.CLOSED, CaseStatus.REJECTED):
            raise CaseClosedError(f"the case is {self.status.value} already")
        self._closed(by=by, reason=reason, at=at)

    @event(Closed)
    def _closed(self, by: UUID, reason: str, at: datetime) -> None:
        self.status = CaseStatus.CLOSED

    def record_access(
        self,
        by: UUID,
        what: str,
        at: datetime,
        subject: str | None = None,
        listed: list[UUID] | None = None,
    ) -> None:
        """Record a read of case data; the caller saves before answering."""
        self.require_readable(at)
        self._accessed(by=by, what=what, subject=subject, listed=list(listed or []), at=at)

    @event(Accessed)
    def _accessed(
        self, by: UUID, what: str, subject: str | None, listed: list[UUID], at: datetime
    ) -> None:
        if not hasattr(self, "listed"):
            self.listed = set()
        self.listed.update(listed)

    @property
    def opened_on(self) -> datetime:
        """When the case was opened (the event's own time for cases opened before it was kept)."""
        return self.opened_at or self.created_on

    def check_listed(self, visitor_id: UUID) -> None:
        """Refuse details of anyone a contacts answer of this case has not listed."""
        if visitor_id not in getattr(self, "listed", set()):
            raise NotListedContactError("this visitor is not a listed contact of the case")


class ExposureNotice(Aggregate):
    """A declared exposure at a venue in a window; visitors who were there are alerted."""

    forgotten = False

    class Declared(Aggregate.Created):
        """A tracer declared an exposure."""

        case_id: UUID
        venue_id: UUID
        start: datetime
        end: datetime
        declared_by: UUID
        declared_at: datetime
        notified: int
        # Added later: what the people reached should do, and who is not alerted (the case's
        # index persons, at their own visits).
        advice: str = ""
        exempt: tuple[UUID, ...] = ()

    @event(Declared)
    def __init__(
        self,
        id: UUID,
        case_id: UUID,
        venue_id: UUID,
        start: datetime,
        end: datetime,
        declared_by: UUID,
        declared_at: datetime,
        notified: int,
        advice: str = "",
        exempt: tuple[UUID, ...] = (),
    ) -> None:
        self.case_id = case_id
        self.venue_id = venue_id
        self.start = start
        self.end = end
        self.declared_by = declared_by
        self.declared_at = declared_at
        self.notified = notified
        self.advice = advice
        self.exempt = tuple(exempt)
