"""Printable venue posters: a QR code holding the check-in or checkout URL, as SVG and as PNG."""

from __future__ import annotations

import io
import logging
import threading
import xml.etree.ElementTree as ET

from PIL import Image, ImageDraw

from domain.venues import CodeKind
from interface.http.posters.fonts import _face, find_cjk_font
from interface.http.posters.layout import (
    BAND_HEIGHT,
    DPI,
    HEIGHT,
    PAGE_HEIGHT_MM,
    PAGE_WIDTH_MM,
    QR_BORDER,
    SVG_FONTS,
    SVG_NS,
    WHITE,
    WIDTH,
    XML_LANG,
    _EstimatedType,
    _PlacedQr,
    _plan,
)

log = logging.getLogger("interface.http.posters")

# FreeType faces are not safe to share between threads; posters are rare, so draw one at a time.
_DRAWING = threading.Lock()


def poster_svg(url: str, venue_name: str, kind: CodeKind) -> bytes:
    """A self-contained SVG poster (UTF-8) whose QR code holds `url`."""
    plan = _plan(url, venue_name, kind, _EstimatedType())
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "version": "1.1",
            "width": PAGE_WIDTH_MM,
            "height": PAGE_HEIGHT_MM,
            "viewBox": f"0 0 {WIDTH} {HEIGHT}",
            "font-family": SVG_FONTS,
            XML_LANG: "zh-CN",
        },
    )
    heading = f"{plan.venue_name} · {plan.title}" if plan.venue_name else plan.title
    ET.SubElement(root, "title").text = heading
    ET.SubElement(root, "rect", {"width": str(WIDTH), "height": str(HEIGHT), "fill": WHITE})
    ET.SubElement(
        root, "rect", {"width": str(WIDTH), "height": str(BAND_HEIGHT), "fill": plan.colour}
    )
    for line in plan.lines:
        attributes = {
            "x": str(WIDTH // 2),
            "y": str(line.baseline),
            "font-size": str(line.size),
            "fill": line.fill,
            "text-anchor": "middle",
        }
        if line.bold:
            attributes["font-weight"] = "bold"
        ET.SubElement(root, "text", attributes).text = line.text
    root.append(_qr_svg(plan.qr))
    out = io.BytesIO()
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out.getvalue()


def poster_png(url: str, venue_name: str, kind: CodeKind) -> bytes:
    """A PNG poster (1240 x 1748, A5 at 213 dpi) whose QR code holds `url`."""
    image = Image.new("RGB", (WIDTH, HEIGHT), WHITE)
    draw = ImageDraw.Draw(image)
    with _DRAWING:
        face = _face(find_cjk_font())
        plan = _plan(url, venue_name, kind, face)
        draw.rectangle((0, 0, WIDTH - 1, BAND_HEIGHT - 1), fill=plan.colour)
        for line in plan.lines:
            font = face.font(line.size, bold=line.bold)
            xy = (WIDTH // 2, line.baseline)
            draw.text(xy, line.text, font=font, fill=line.fill, anchor="ms")
    image.paste(_qr_png(plan.qr), (plan.qr.x, plan.qr.y))
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue()


# --- SVG ----------------------------------------------------------------------------------


def _qr_svg(qr: _PlacedQr) -> ET.Element:
    out = io.BytesIO()
    qr.code.save(
        out,
        kind="svg",
        scale=1,
        border=QR_BORDER,
        dark="#000",
        light=None,
        xmldecl=False,
        svgns=False,
        omitsize=True,
        svgclass=None,
        lineclass=None,
        nl=False,
    )
    element = ET.fromstring(out.getvalue())  # noqa: S314 -- segno's own output, no user input
    side = str(qr.scale * qr.modules)
    element.attrib.update(
        {"x": str(qr.x), "y": str(qr.y), "width": side, "height": side},
    )
    element.set("shape-rendering", "crispEdges")
    return element


# --- PNG ----------------------------------------------------------------------------------


def _qr_png(qr: _PlacedQr) -> Image.Image:
    out = io.BytesIO()
    qr.code.save(out, kind="png", scale=qr.scale, border=QR_BORDER, dark="#000", light="#fff")
    out.seek(0)
    with Image.open(out) as image:
        return image.convert("RGB")
