"""Case exports as call lists in CSV or JSON; no CSV cell can start a spreadsheet formula.

A call list has one row per contact (depth, venue names, first and last overlap, overlap
minutes, and name and phone only when the officer asked for details), then the index person's
trajectory. Times are in the zone the officer asked for, to the second.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from domain.case_reads import CaseExport
from domain.ports import VenueView
from domain.tracing import Contact
from infrastructure.ops.regions import national_regions

# OWASP's advice for CSV injection: a cell that a spreadsheet could read as a formula is
# prefixed with a quote. Spreadsheets skip leading blanks and line breaks and read full-width
# signs as their ASCII forms, so a cell is judged by its first visible character after NFKC.
FORMULA_STARTS = ("=", "+", "-", "@")
# litestar adds `; charset=utf-8` to every text/* type itself.
CSV_MEDIA_TYPE = "text/csv"
COLUMNS = [
    "section",
    "visitor_id",
    "depth",
    "venues",
    "first_overlap",
    "last_overlap",
    "overlap_minutes",
    "name",
    "phone",
    "erased",
    "visit_id",
    "venue_id",
    "address",
    "region",
    "checked_in_at",
    "checked_out_at",
    "checkout_reason",
]


class RuleOut(msgspec.Struct):
    """The close-contact rule the call list was made with."""

    min_overlap_minutes: int
    after_minutes: int
    before_minutes: int
    depth: int


class VenueName(msgspec.Struct):
    """A venue of a contact's overlaps."""

    venue_id: UUID
    name: str


class CallRow(msgspec.Struct, omit_defaults=True):
    """One contact to call; `name` and `phone` only when details were asked for."""

    visitor_id: UUID
    depth: int
    venues: list[VenueName]
    first_overlap: datetime
    last_overlap: datetime
    overlap_minutes: int
    erased: bool = False
    name: str | None = None
    phone: str | None = None


class VisitRow(msgspec.Struct):
    """One visit of the index person."""

    visit_id: UUID
    venue_id: UUID
    venue_name: str
    address: str
    region: str
    region_name: str | None
    checked_in_at: datetime
    checked_out_at: datetime | None
    checkout_reason: str | None


class CaseExportOut(msgspec.Struct):
    """The JSON form of an export: the call list, then the trajectory."""

    case_id: str
    tz: str
    rule: RuleOut
    details: bool
    contacts: list[CallRow]
    trajectory: list[VisitRow]
    outside_jurisdiction: int


def _local(at: datetime, where: ZoneInfo) -> datetime:
    return at.astimezone(where).replace(microsecond=0)


def call_list(
    case_id: str,
    exported: CaseExport,
    where: ZoneInfo,
    rule: RuleOut,
    details: bool,
    venue: Callable[[UUID], VenueView | None],
) -> CaseExportOut:
    """What an export answers, with times in `where`."""
    regions = national_regions()
    return CaseExportOut(
        case_id=case_id,
        tz=str(where.key),
        rule=rule,
        details=details,
        contacts=[_call_row(c, exported, where, details, venue) for c in exported.contacts],
        trajectory=[
            VisitRow(
                visit_id=t.visit.visit_id,
                venue_id=t.venue.venue_id,
                venue_name=t.venue.name,
                address=t.venue.address,
                region=t.venue.region,
                region_name=regions.name(t.venue.region),
                checked_in_at=_local(t.visit.checked_in_at, where),
                checked_out_at=None
                if t.visit.checked_out_at is None
                else _local(t.visit.checked_out_at, where),
                checkout_reason=t.visit.checkout_reason,
            )
            for t in exported.trajectory.visits
        ],
        outside_jurisdiction=exported.trajectory.outside_jurisdiction,
    )


def _call_row(
    contact: Contact,
    exported: CaseExport,
    where: ZoneInfo,
    details: bool,
    venue: Callable[[UUID], VenueView | None],
) -> CallRow:
    exposures = sorted(contact.exposures, key=lambda e: e.start)
    venues: dict[UUID, str] = {}
    for e in exposures:
        if e.venue_id not in venues:
            found = venue(e.venue_id)
            venues[e.venue_id] = found.name if found is not None else ""
    seconds = sum(e.overlap.total_seconds() for e in exposures)
    row = CallRow(
        visitor_id=contact.visitor_id,
        depth=contact.depth,
        venues=[VenueName(venue_id=v, name=n) for v, n in venues.items()],
        first_overlap=_local(min(e.start for e in exposures), where),
        last_overlap=_local(max(e.end for e in exposures), where),
        overlap_minutes=int(seconds // 60),
    )
    if details:
        reached = exported.details.get(contact.visitor_id)
        if reached is None:
            row.erased = True
        else:
            row.name, row.phone = reached.name, reached.phone
    return row


def safe_cell(value: object) -> str:
    """A cell that a spreadsheet shows as text, never evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if _reads_as_formula(text) else text


def _reads_as_formula(text: str) -> bool:
    if text[:1].isspace() or (text and unicodedata.category(text[0]) in ("Cc", "Cf")):
        # Blanks, line breaks, controls or invisible marks first: only text ever starts so.
        return True
    return unicodedata.normalize("NFKC", text).startswith(FORMULA_STARTS)


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def to_csv(export: CaseExportOut) -> bytes:
    """One table: a row per contact (the call list), then the trajectory's visits."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for c in export.contacts:
        names = "; ".join(v.name for v in c.venues)
        erased = "yes" if c.erased else ""
        contact = ("contact", c.visitor_id, c.depth, names, _time(c.first_overlap))
        rest = (_time(c.last_overlap), c.overlap_minutes, c.name, c.phone, erased)
        writer.writerow(safe_cell(x) for x in (*contact, *rest, "", "", "", "", "", "", ""))
    for v in export.trajectory:
        visit = ("trajectory", "", "", v.venue_name, "", "", "", "", "", "")
        where = (v.visit_id, v.venue_id, v.address, v.region)
        times = (_time(v.checked_in_at), _time(v.checked_out_at), v.checkout_reason)
        writer.writerow(safe_cell(x) for x in (*visit, *where, *times))
    # A byte-order mark lets spreadsheets read the Chinese venue names as UTF-8.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_json(export: CaseExportOut) -> bytes:
    """The same content as JSON."""
    return msgspec.json.encode(export)
