"""Merchants' notices (精准推送): a message to everyone whose visit to a venue overlapped a window.

The merchant learns how many were reached, never who, and "fewer than 5" below k = 5. A notice
names no visitor anywhere: who receives it follows, at read time, from the visitor's own
visits (sealed under their key), so erasing a visitor shreds every link between them and a
notice. The message is sealed under the key of the day it was sent, so retention shreds it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.app import Fangxin
from domain.errors import ConcurrentChangeError, ConflictError, InvalidInputError
from domain.ids import derive_id
from domain.outreach_ports import NoticeLog, NoticeView
from domain.ports import VenueView, VisitView

MAX_MESSAGE = 500
MAX_PER_DAY = 5
MAX_WINDOW = timedelta(days=7)
# Below this many visitors reached, the merchant is told only "fewer than 5".
K_ANONYMITY = 5
FEWER_THAN_K = f"fewer than {K_ANONYMITY}"
# A window may end this much after now (clocks differ); it is then cut at now.
CLOCK_SKEW = timedelta(minutes=2)
# A merchant's day is China Standard Time's: the daily limit starts again at midnight there.
MERCHANT_DAY = timezone(timedelta(hours=8))
# How far back a visitor's visits are matched against notices (the retention period's default).
HISTORY = timedelta(days=28)


class NoticeWindowError(InvalidInputError):
    """A notice's window is reversed, in the future, too long or older than retention."""

    kind = "invalid-notice-window"


class NoticeLimitError(ConflictError):
    """The venue sent as many notices today as a venue may."""

    kind = "notice-limit-reached"


class VenueNotice(Aggregate):
    """A notice of a venue; its id is the venue's day slot, so the daily limit holds exactly
    even when two workers send at once (the second one's commit conflicts)."""

    forgotten = False

    class Sent(Aggregate.Created):
        """A merchant sent a notice; `reached` is how many visitors it reached then."""

        venue_id: UUID
        merchant_id: UUID
        message: str
        start: datetime
        end: datetime
        sent_at: datetime
        reached: int

        @property
        def privacy_scopes(self) -> tuple[str, ...]:
            """Sealed under the key of its sending day: retention shreds it with the visits."""
            return (f"day:{self.sent_at.astimezone(UTC).date().isoformat()}",)

    @event(Sent)
    def __init__(
        self,
        id: UUID,
        venue_id: UUID,
        merchant_id: UUID,
        message: str,
        start: datetime,
        end: datetime,
        sent_at: datetime,
        reached: int,
    ) -> None:
        self.venue_id = venue_id
        self.merchant_id = merchant_id
        self.message = message
        self.start = start
        self.end = end
        self.sent_at = sent_at
        self.reached = reached


class SentNotice(msgspec.Struct, frozen=True):
    """What the merchant is told: the notice's id, and how many it reached (or "fewer than 5")."""

    notice_id: UUID
    reached: int | str


def notice_slot(venue_id: UUID, sent_at: datetime, slot: int) -> UUID:
    """The id of the venue's `slot`-th notice of the merchant's day of `sent_at`."""
    day = sent_at.astimezone(MERCHANT_DAY).date().isoformat()
    return derive_id("notice", venue_id, day, slot)


def visit_end(visit: VisitView, venue: VenueView | None, now: datetime) -> datetime:
    """When a visit ended, or ends at the latest (its venue's maximum dwell), for matching."""
    if visit.checked_out_at is not None:
        return visit.checked_out_at
    dwell = timedelta(minutes=venue.max_dwell_minutes if venue else 180)
    return min(now, visit.checked_in_at + dwell)


class Notices:
    """Sending notices, for a venue's owner, and reading them, for the visitors they reach."""

    def __init__(self, app: Fangxin, notices: NoticeLog, retention_days: int = 28) -> None:
        self.app = app
        self.ports = app.ports
        self.store = app.store
        self.notices = notices
        self.retention = timedelta(days=retention_days)

    def send(
        self, merchant_id: UUID, venue_id: UUID, message: str, start: datetime, end: datetime
    ) -> SentNotice:
        """Send a notice to whoever visited the owned venue in [start, end]."""
        venue = self.app.owned_venue(merchant_id, venue_id)
        now = self.ports.clock.now()
        text = message.strip()
        if not text or len(text) > MAX_MESSAGE:
            raise InvalidInputError(f"message must have 1 to {MAX_MESSAGE} characters")
        end = self._checked_window(start, end, now)
        reached = len(self._recipients(venue, start, end, now))
        day_start = datetime.combine(
            now.astimezone(MERCHANT_DAY).date(), datetime.min.time(), MERCHANT_DAY
        )
        with self.store.exclusive(venue_id):
            for slot in range(self.notices.sent_since(venue_id, day_start), MAX_PER_DAY):
                notice = VenueNotice(
                    id=notice_slot(venue_id, now, slot),
                    venue_id=venue_id,
                    merchant_id=merchant_id,
                    message=text,
                    start=start,
                    end=end,
                    sent_at=now,
                    reached=reached,
                )
                try:
                    self.store.commit(notice)
                except ConcurrentChangeError:
                    continue  # another worker took this slot meanwhile: the next one
                told: int | str = reached if reached >= K_ANONYMITY else FEWER_THAN_K
                return SentNotice(notice_id=notice.id, reached=told)
        raise NoticeLimitError(
            f"a venue sends at most {MAX_PER_DAY} notices a day (China Standard Time);"
            " try again tomorrow"
        )

    def _checked_window(self, start: datetime, end: datetime, now: datetime) -> datetime:
        """The window's end (cut at now); refuses a window that is not a recent past one."""
        if end > now + CLOCK_SKEW:
            raise NoticeWindowError("`to` cannot lie in the future")
        end = min(end, now)
        if end <= start:
            raise NoticeWindowError("`to` must follow `from`, and neither in the future")
        if end - start > MAX_WINDOW:
            raise NoticeWindowError("a notice's window lasts at most 7 days")
        if start < now - self.retention:
            raise NoticeWindowError("`from` lies before the retention period: nobody is left")
        return end

    def _recipients(
        self, venue: VenueView, start: datetime, end: datetime, now: datetime
    ) -> set[UUID]:
        """The registered visitors (guardians) with a visit at the venue overlapping the window,
        by the same rule `notices_of` applies."""
        since = start - timedelta(days=1)
        visits = self.ports.visits.at_venue(venue.venue_id, since, end + timedelta(seconds=1))
        return {
            v.guardian_id
            for v in visits
            if v.checked_in_at <= end and visit_end(v, venue, now) >= start
        }

    def notices_of(self, visitor_id: UUID) -> list[tuple[NoticeView, VenueView]]:
        """Notices whose window overlaps the visitor's own (or dependents') visits, oldest first."""
        now = self.ports.clock.now()
        found: dict[UUID, tuple[NoticeView, VenueView]] = {}
        for visit in self.ports.visits.of_guardian(
            visitor_id, now - HISTORY, now + timedelta(minutes=1)
        ):
            venue = self.ports.directory.venue(visit.venue_id)
            if venue is None:
                continue
            end = visit_end(visit, venue, now)
            for notice in self.notices.at_venue(visit.venue_id, visit.checked_in_at, end):
                found.setdefault(notice.notice_id, (notice, venue))
        return sorted(found.values(), key=lambda pair: (pair[0].sent_at, pair[0].notice_id))

    def reaches(self, visitor_id: UUID, notice: NoticeView) -> bool:
        """Whether a notice just sent reaches this visitor (the live feed asks)."""
        now = self.ports.clock.now()
        since = notice.start - timedelta(days=1)
        visits = self.ports.visits.of_guardian(visitor_id, since, notice.end + timedelta(seconds=1))
        return any(
            v.venue_id == notice.venue_id
            and v.checked_in_at <= notice.end
            and visit_end(v, self.ports.directory.venue(v.venue_id), now) >= notice.start
            for v in visits
        )
