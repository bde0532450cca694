"""One page layout for both poster formats: where each line and the QR code go, and at what size."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import segno

from domain.venues import CodeKind

log = logging.getLogger("interface.http.posters")


# One page layout for both formats: A5 portrait, 1240 x 1748 px at about 213 dpi.
WIDTH = 1240


HEIGHT = 1748


PAGE_WIDTH_MM = "148mm"


PAGE_HEIGHT_MM = "208.6mm"


DPI = 213


TEXT_WIDTH = WIDTH - 2 * 70


BAND_HEIGHT = 200


QR_TOP = 500


QR_BOX = 900


QR_BORDER = 4  # the quiet zone, in modules; scanners need it


MAX_QR_VERSION = 10  # past this the modules get too small to scan from a poster reliably


MAX_NAME_CHARS = 120


SVG_NS = "http://www.w3.org/2000/svg"


XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


SVG_FONTS = "'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"


INK = "#111111"


MUTED = "#555555"


WHITE = "#ffffff"


@dataclass(frozen=True, slots=True)
class _Wording:
    title_zh: str
    title_en: str
    line_zh: str
    line_en: str
    colour: str


WORDING = {
    CodeKind.ENTRY: _Wording("入店登记", "Check in", "扫码登记入店", "Scan to check in", "#17693a"),
    CodeKind.CHECKOUT: _Wording(
        "离店登记", "Check out", "结账时扫码离店", "Scan at the till to check out", "#1c4a86"
    ),
}


BRAND_ZH = "放心 Fangxin"


BRAND_EN = "Fangxin"


class _Typesetter(Protocol):
    def width(self, text: str, size: int, *, bold: bool) -> float: ...

    def renders(self, text: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    size: int
    bold: bool
    baseline: int
    fill: str


@dataclass(frozen=True, slots=True)
class _PlacedQr:
    code: segno.QRCode
    x: int
    y: int
    scale: int
    modules: int


@dataclass(frozen=True, slots=True)
class _Plan:
    colour: str
    title: str
    venue_name: str
    lines: tuple[_Line, ...]
    qr: _PlacedQr


@dataclass(frozen=True, slots=True)
class _Area:
    top: int
    height: int
    sizes: Sequence[int]
    max_lines: int = 1
    shrink_before_wrapping: bool = False
    break_anywhere: bool = False
    bold: bool = False
    fill: str = INK


TITLE_AREA = _Area(0, BAND_HEIGHT, range(80, 47, -4), bold=True, fill=WHITE)


NAME_AREA = _Area(220, 270, range(104, 43, -4), max_lines=2, bold=True)


URL_AREA = _Area(
    QR_TOP + QR_BOX,
    80,
    range(30, 17, -2),
    max_lines=2,
    shrink_before_wrapping=True,
    break_anywhere=True,
    fill=MUTED,
)


LINE_ZH_AREA = _Area(1490, 90, range(64, 35, -4), bold=True)


LINE_EN_AREA = _Area(1580, 70, range(44, 27, -2))


BRAND_AREA = _Area(1670, 60, (26, 22), fill=MUTED)


def _plan(url: str, venue_name: str, kind: CodeKind, ts: _Typesetter) -> _Plan:
    words = WORDING[kind]
    qr = _place_qr(url)
    name = _clean(venue_name)
    title = _choose(ts, f"{words.title_zh} · {words.title_en}", words.title_en)
    shown_name = name if ts.renders(name) else _renderable_part(ts, name)
    if shown_name != name:
        log.warning("The poster font cannot draw the venue name; printing %r", shown_name)
    lines = [
        *_set(ts, title, TITLE_AREA),
        *_set(ts, shown_name, NAME_AREA),
        *_set(ts, url, URL_AREA),
        *_set(ts, _choose(ts, words.line_zh, ""), LINE_ZH_AREA),
        *_set(ts, words.line_en, LINE_EN_AREA),
        *_set(ts, _choose(ts, BRAND_ZH, BRAND_EN), BRAND_AREA),
    ]
    return _Plan(words.colour, title, shown_name, tuple(lines), qr)


def _place_qr(url: str) -> _PlacedQr:
    if not url:
        raise ValueError("a poster needs a URL")
    code = segno.make_qr(url, error="q", boost_error=False)
    if not isinstance(code.version, int) or code.version > MAX_QR_VERSION:
        raise ValueError(f"URL too long to print as a reliable QR code ({len(url)} characters)")
    modules = int(code.symbol_size(border=QR_BORDER)[0])
    scale = QR_BOX // modules
    side = scale * modules
    return _PlacedQr(code, (WIDTH - side) // 2, QR_TOP + (QR_BOX - side) // 2, scale, modules)


def _clean(text: str) -> str:
    """Drops control, format and unassigned characters (invalid in XML, or spoofing) and
    collapses whitespace."""
    kept = (
        ch
        for ch in text[: MAX_NAME_CHARS * 2]
        if ch.isspace() or not unicodedata.category(ch).startswith("C")
    )
    return " ".join("".join(kept).split())[:MAX_NAME_CHARS]


def _choose(ts: _Typesetter, preferred: str, fallback: str) -> str:
    if ts.renders(preferred):
        return preferred
    if fallback:
        log.warning("The poster font cannot draw %r; printing %r instead", preferred, fallback)
    else:
        log.warning("The poster font cannot draw %r; leaving it out", preferred)
    return fallback


def _renderable_part(ts: _Typesetter, text: str) -> str:
    return " ".join("".join(ch for ch in text if ch.isspace() or ts.renders(ch)).split())


def _set(ts: _Typesetter, text: str, area: _Area) -> list[_Line]:
    """Fits `text` into `area`: the largest size that needs at most `max_lines` lines (or the
    fewest lines, then the largest size), else the smallest size, cut short with an ellipsis."""
    if not text:
        return []
    if area.shrink_before_wrapping:
        tries = [(n, size) for n in range(1, area.max_lines + 1) for size in area.sizes]
    else:
        tries = [(area.max_lines, size) for size in area.sizes]
    for max_lines, size in tries:
        fits = _fitter(ts, size, bold=area.bold)
        lines, clean = _wrap(text, fits)
        if len(lines) <= max_lines and (clean or area.break_anywhere):
            break
    else:
        if len(lines) > area.max_lines:
            ellipsis = "…" if ts.renders("…") else "..."
            lines = lines[: area.max_lines]
            last = lines[-1]
            while last and not fits(last + ellipsis):
                last = last[:-1]
            lines[-1] = last.rstrip() + ellipsis
    pitch = round(size * 1.25)
    first = area.top + (area.height - pitch * len(lines)) // 2 + pitch // 2 + round(size * 0.36)
    return [
        _Line(part, size, area.bold, first + index * pitch, area.fill)
        for index, part in enumerate(lines)
    ]


def _fitter(ts: _Typesetter, size: int, *, bold: bool) -> Callable[[str], bool]:
    return lambda part: ts.width(part, size, bold=bold) <= TEXT_WIDTH


def _wrap(text: str, fits: Callable[[str], bool]) -> tuple[list[str], bool]:
    """Greedy line breaking at a space, else between any two characters; and whether every
    break fell at a space or beside a CJK character (rather than inside a Latin word)."""
    lines: list[str] = []
    clean = True
    rest = text
    while rest:
        if fits(rest):
            lines.append(rest)
            break
        end = 1
        while end < len(rest) and fits(rest[: end + 1]):
            end += 1
        space = rest.rfind(" ", 0, end + 1)
        if space > 0:
            end = space
        elif not (_is_wide(rest[end - 1]) or _is_wide(rest[end])):
            clean = False
        lines.append(rest[:end].rstrip())
        rest = rest[end:].lstrip()
    return lines, clean


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


class _EstimatedType:
    """Text widths for the SVG, estimated: the viewer picks the font, so none can be measured."""

    def width(self, text: str, size: int, *, bold: bool) -> float:
        latin = 0.64 if bold else 0.6
        return size * sum(1.0 if _is_wide(ch) else latin for ch in text)

    def renders(self, text: str) -> bool:
        return True
