"""Projections: follow the application's notification log and update the read models.

The runner keeps a tracking position (the last notification id applied) and applies each
event once, in log order. A writer waits for its own position (read-your-writes); a
background thread picks up what other processes wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Mapper

from domain.forgetting import Forgotten
from domain.people import Merchant, Visitor
from domain.ports import Directory, Principal, VenueView, VisitLog, VisitorView, VisitView
from domain.venues import Venue
from domain.visits import Visit

log = logging.getLogger("fangxin.projections")

BATCH = 1000


class ReadModelProjector:
    """Applies one event to the directory and visit log."""

    def __init__(
        self, directory: Directory, visits: VisitLog, default_max_dwell_minutes: int = 180
    ) -> None:
        self.directory = directory
        self.visits = visits
        self._default_max_dwell = default_max_dwell_minutes
        self._handlers: dict[type, Callable[[object], None]] = {
            Visitor.Registered: self._visitor_registered,  # type: ignore[dict-item]
            Visitor.Erased: self._visitor_erased,  # type: ignore[dict-item]
            Merchant.Registered: self._merchant_registered,  # type: ignore[dict-item]
            Venue.Registered: self._venue_registered,  # type: ignore[dict-item]
            Venue.CodeRotated: self._venue_codes_rotated,  # type: ignore[dict-item]
            Visit.CheckedIn: self._checked_in,  # type: ignore[dict-item]
            Visit.CheckedOut: self._checked_out,  # type: ignore[dict-item]
        }

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        """Update the read models with one event; forgotten events change nothing."""
        if isinstance(event, Forgotten):
            return
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _visitor_registered(self, e: Visitor.Registered) -> None:
        if e.token_hash:
            self.directory.add_token(e.token_hash, Principal(role="visitor", id=e.originator_id))
        self.directory.put_visitor(
            VisitorView(
                visitor_id=e.originator_id,
                dependents=dict(zip(e.dependent_names, e.dependent_ids, strict=True)),
                phone_index=e.phone_index,
            )
        )

    def _visitor_erased(self, e: Visitor.Erased) -> None:
        self.directory.remove_tokens_of(e.originator_id)
        self.directory.remove_visitor(e.originator_id)
        self.visits.forget_guardian(e.originator_id)

    def _merchant_registered(self, e: Merchant.Registered) -> None:
        self.directory.add_token(e.token_hash, Principal(role="merchant", id=e.originator_id))

    def _venue_registered(self, e: Venue.Registered) -> None:
        self.directory.put_venue(
            VenueView(
                venue_id=e.originator_id,
                merchant_id=e.merchant_id,
                name=e.name,
                address=e.address,
                region=e.region,
                category=e.category,
                capacity=e.capacity,
                max_dwell_minutes=e.max_dwell_minutes,
                code_version=1,
            )
        )

    def _venue_codes_rotated(self, e: Venue.CodeRotated) -> None:
        venue = self.directory.venue(e.originator_id)
        if venue is not None:
            self.directory.put_venue(_with_code_version(venue, e.key_version))

    def _checked_in(self, e: Visit.CheckedIn) -> None:
        venue = self.directory.venue(e.venue_id)
        max_dwell = venue.max_dwell_minutes if venue else self._default_max_dwell
        self.visits.checked_in(
            VisitView(
                visit_id=e.originator_id,
                visitor_id=e.visitor_id,
                guardian_id=e.guardian_id,
                venue_id=e.venue_id,
                checked_in_at=e.at,
                via=e.via,
            ),
            deadline=e.at + timedelta(minutes=max_dwell),
        )

    def _checked_out(self, e: Visit.CheckedOut) -> None:
        self.visits.checked_out(e.originator_id, e.at, e.reason)


def _with_code_version(venue: VenueView, version: int) -> VenueView:
    from msgspec.structs import replace

    return replace(venue, code_version=version)


class ProjectionRunner:
    """Follows the notification log from its tracking position, applying each event once."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        projector: ReadModelProjector,
        poll_interval: float = 0.5,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._projector = projector
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._position = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def position(self) -> int:
        """The last notification id applied."""
        return self._position

    def catch_up(self) -> int:
        """Apply every new event; returns how many were applied."""
        applied = 0
        with self._lock:
            while True:
                notifications = self._recorder.select_notifications(
                    start=self._position, limit=BATCH, inclusive_of_start=False
                )
                for notification in notifications:
                    self._projector.apply(self._mapper.to_domain_event(notification))
                    self._position = notification.id
                applied += len(notifications)
                if len(notifications) < BATCH:
                    return applied

    def wait_for(self, position: int) -> None:
        """Read-your-writes: return once `position` is applied."""
        if self._position < position:
            self.catch_up()

    def start(self) -> None:
        """Follow the log in a background thread (for writes of other processes)."""
        self._thread = threading.Thread(target=self._follow, name="projection-runner", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                self.catch_up()
            except Exception:
                # Never swallow silently: the next poll retries from the same position.
                log.exception("projection catch-up failed; retrying")
                time.sleep(self._poll_interval)

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
