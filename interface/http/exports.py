"""Case exports as CSV or JSON; no CSV cell can start a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import unicodedata

import msgspec

from interface.http.case_schemas import ContactOut, TrajectoryOut

# OWASP's advice for CSV injection: a cell that a spreadsheet could read as a formula is
# prefixed with a quote. Spreadsheets skip leading blanks and line breaks and read full-width
# signs as their ASCII forms, so a cell is judged by its first visible character after NFKC.
FORMULA_STARTS = ("=", "+", "-", "@")
# litestar adds `; charset=utf-8` to every text/* type itself.
CSV_MEDIA_TYPE = "text/csv"
COLUMNS = [
    "section",
    "visit_id",
    "visitor_id",
    "depth",
    "venue_id",
    "venue_name",
    "address",
    "region",
    "from",
    "to",
    "checkout_reason",
    "overlap_seconds",
]


class CaseExport(msgspec.Struct):
    """The JSON form of an export."""

    case_id: str
    trajectory: TrajectoryOut
    contacts: list[ContactOut]


def safe_cell(value: object) -> str:
    """A cell that a spreadsheet shows as text, never evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if _reads_as_formula(text) else text


def _reads_as_formula(text: str) -> bool:
    if text[:1].isspace() or (text and unicodedata.category(text[0]) in ("Cc", "Cf")):
        # Blanks, line breaks, controls or invisible marks first: only text ever starts so.
        return True
    return unicodedata.normalize("NFKC", text).startswith(FORMULA_STARTS)


def to_csv(trajectory: TrajectoryOut, contacts: list[ContactOut]) -> bytes:
    """One table: the trajectory's visits, then one row per contact exposure."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for v in trajectory.visits:
        writer.writerow(
            safe_cell(c)
            for c in (
                "trajectory",
                v.visit_id,
                "",
                "",
                v.venue.venue_id,
                v.venue.name,
                v.venue.address,
                v.venue.region,
                _time(v.checked_in_at),
                _time(v.checked_out_at),
                v.checkout_reason,
                "",
            )
        )
    for contact in contacts:
        for e in contact.exposures:
            writer.writerow(
                safe_cell(c)
                for c in (
                    "contact",
                    "",
                    contact.visitor_id,
                    contact.depth,
                    e.venue_id,
                    "",
                    "",
                    "",
                    _time(e.start),
                    _time(e.end),
                    "",
                    e.overlap_seconds,
                )
            )
    # A byte-order mark lets spreadsheets read the Chinese venue names as UTF-8.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _time(value: object) -> str:
    return "" if value is None else msgspec.json.encode(value).decode().strip('"')


def to_json(case_id: str, trajectory: TrajectoryOut, contacts: list[ContactOut]) -> bytes:
    """The same content as JSON."""
    return msgspec.json.encode(
        CaseExport(case_id=case_id, trajectory=trajectory, contacts=contacts)
    )
