"""What one event of the log means for the history: row operations, pure (no I/O).

Every store (memory, SQLite, PostgreSQL) applies the same operations, so they cannot drift:

- `Visit.CheckedIn` adds a visit row, its maximum dwell taken from the venues the history keeps
  itself (`Venue.Registered` / `Venue.Changed`), or the default for a venue it does not know;
- `Visit.CheckedOut` closes it (the event names the visit's day, so a store looks in one day);
- `Visitor.Erased` deletes every row of the visitor as guardian or as person (their
  dependents' visits name them as guardian);
- `ExposureNotice.Declared` adds an exposure;
- every stream whose first key is a day key (visits, merchants' notices) is recorded as a log
  row of that day, so that retention deletes its ciphertext from the log with the day.

Forgotten events (a key destroyed) change nothing, except that a visit or notice forgotten
because its visitor erased their data still names its day key in clear (`DayKeys`), so its log
rows go with its day too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol

from domain.cases import ExposureNotice
from domain.forgetting import Forgotten
from domain.people import Visitor
from domain.ports import ExposureView, VisitView
from domain.venues import Venue
from domain.visits import Visit
from infrastructure.keys.keystore import KEY_ID_BYTES
from infrastructure.readmodels import views

DAY_SCOPE = "day:"
# How many days around today `DayKeys` names: retention keeps far fewer.
KNOWN_DAYS = 400


class AddVisit(msgspec.Struct, frozen=True, gc=False):
    """A check-in: the visit, open, and the longest it may last."""

    visit: VisitView
    max_dwell_minutes: int

    @property
    def day(self) -> date:
        """The UTC day the visit began on (its partition)."""
        return utc_day(self.visit.checked_in_at)


class CloseVisit(msgspec.Struct, frozen=True, gc=False):
    """A check-out of the visit that began on `day`."""

    visit_id: UUID
    day: date
    at: datetime
    reason: str


class EraseVisitor(msgspec.Struct, frozen=True, gc=False):
    """Every row of this visitor, as guardian or as person, goes."""

    visitor_id: UUID


class AddExposure(msgspec.Struct, frozen=True, gc=False):
    """A declared exposure."""

    exposure: ExposureView


class VenueDwell(msgspec.Struct, frozen=True, gc=False):
    """A venue's maximum dwell, as registered or changed."""

    venue_id: UUID
    minutes: int


class LogRow(msgspec.Struct, frozen=True, gc=False):
    """The log's stream `originator_id` is sealed under the key of `day`: it goes with it."""

    day: date
    originator_id: UUID


Operation = AddVisit | CloseVisit | EraseVisitor | AddExposure | VenueDwell | LogRow


def utc_day(at: datetime) -> date:
    """The UTC day of an aware datetime."""
    if at.tzinfo is None:
        raise ValueError("history times must be timezone-aware")
    return at.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class DayKeys:
    """Which day a key id belongs to, for the days around today (ids are HMACs of the scope's
    name, made in memory by `KeyStore.key_id`: no I/O)."""

    def __init__(self, key_id: Callable[[str], bytes], today: date | None = None) -> None:
        self._key_id = key_id
        self._fixed = today is not None
        self._center = today or datetime.now(UTC).date()
        self._days = self._around(self._center)

    def _around(self, center: date) -> dict[bytes, date]:
        days = (center + timedelta(days=offset) for offset in range(-KNOWN_DAYS, 3))
        return {self._key_id(f"{DAY_SCOPE}{day.isoformat()}"): day for day in days}

    def day_of(self, state: bytes) -> date | None:
        """The day whose key a stored state names in clear first, if it is a day key."""
        key_id = bytes(state[2 : 2 + KEY_ID_BYTES])
        found = self._days.get(key_id)
        if found is None and not self._fixed:
            today = datetime.now(UTC).date()
            if today != self._center:  # a process running for days: name the new ones
                self._center, self._days = today, self._around(today)
                found = self._days.get(key_id)
        return found


class Rows:
    """Turns events into operations; remembers each venue's maximum dwell it was told of
    (a store loads them back with `know_venue` when it opens)."""

    def __init__(self, default_max_dwell_minutes: int = 180, day_keys: DayKeys | None = None):
        self._default = default_max_dwell_minutes
        self._dwell: dict[UUID, int] = {}
        self._day_keys = day_keys

    def know_venue(self, venue_id: UUID, minutes: int) -> None:
        """Remember a venue's maximum dwell read back from a store."""
        self._dwell[venue_id] = minutes

    def of(self, event: DomainEventProtocol[UUID], state: bytes | None = None) -> list[Operation]:
        """The operations of one event (`state`, its stored bytes, for a forgotten one)."""
        if isinstance(event, Forgotten):
            return self._forgotten(event, state)
        found: list[Operation] = []
        if isinstance(event, Visit.CheckedIn):
            minutes = self._dwell.get(event.venue_id, self._default)
            found.append(AddVisit(views.visit_view(event), minutes))
        elif isinstance(event, Visit.CheckedOut):
            found.append(CloseVisit(event.originator_id, event.day, event.at, event.reason))
        elif isinstance(event, Visitor.Erased):
            found.append(EraseVisitor(event.originator_id))
        elif isinstance(event, ExposureNotice.Declared):
            found.append(AddExposure(views.exposure_view(event)))
        elif isinstance(event, Venue.Registered | Venue.Changed):
            self._dwell[event.originator_id] = event.max_dwell_minutes
            found.append(VenueDwell(event.originator_id, event.max_dwell_minutes))
        day = _first_day_scope(event)
        if day is not None and event.originator_version == 1:
            found.append(LogRow(day, event.originator_id))
        return found

    def _forgotten(self, event: Forgotten, state: bytes | None) -> list[Operation]:
        if event.originator_version != 1 or state is None or self._day_keys is None:
            return []
        day = self._day_keys.day_of(state)
        return [] if day is None else [LogRow(day, event.originator_id)]


def _first_day_scope(event: DomainEventProtocol[UUID]) -> date | None:
    scopes: tuple[str, ...] = getattr(event, "privacy_scopes", ())
    if scopes and scopes[0].startswith(DAY_SCOPE):
        return date.fromisoformat(scopes[0].removeprefix(DAY_SCOPE))
    return None
