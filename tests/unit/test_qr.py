"""Venue posters: the QR decodes to the URL, the text reads, and user input stays text."""

from __future__ import annotations

import base64
import io
import logging
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

import interface.http.posters.poster as qr
from domain.venues import CodeKind
from interface.http.posters.fonts import find_cjk_font
from interface.http.posters.poster import poster_png, poster_svg

URL = "https://fangxin.example.cn/c/ESjU9TEpikPgjeS2qq8ycUYAAUsZ10JaI4IB"
CHECKOUT_URL = "https://fangxin.example.cn/c/Xo0aQm4ZbH7vT2kq9LwNcR5sYpEuJd8gKfBt"
NAME = "老王面馆"
SVG = "{http://www.w3.org/2000/svg}"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"


def keep(name: str, data: bytes) -> None:
    """Saves an example poster for a person to look at (tests/artifacts is not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_bytes(data)


def decoded(png: bytes) -> list[str]:
    """The texts of every barcode zxing-cpp finds in a PNG."""
    with Image.open(io.BytesIO(png)) as image:
        return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def texts(svg: bytes) -> list[str]:
    """The text of every <text> element, in document order."""
    return [element.text or "" for element in ET.fromstring(svg).iter(f"{SVG}text")]


def test_the_entry_poster_png_decodes_to_the_checkin_url() -> None:
    png = poster_png(URL, NAME, CodeKind.ENTRY)
    keep("poster-entry.png", png)

    assert decoded(png) == [URL]


def test_the_checkout_poster_png_decodes_to_the_checkout_url() -> None:
    png = poster_png(CHECKOUT_URL, NAME, CodeKind.CHECKOUT)
    keep("poster-checkout.png", png)

    assert decoded(png) == [CHECKOUT_URL]


def test_the_png_poster_is_an_a5_portrait_page_at_print_resolution() -> None:
    png = poster_png(URL, NAME, CodeKind.ENTRY)

    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (1240, 1748)
        assert round(image.info["dpi"][0]) == 213


def test_png_posters_set_chinese_in_a_font_that_has_its_glyphs() -> None:
    font = find_cjk_font()

    assert font is not None
    assert qr._face(font).renders(NAME + "扫码登记入店结账时离店")


def test_without_a_cjk_font_the_png_prints_english_and_still_decodes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(qr, "find_cjk_font", lambda: None)

    with caplog.at_level(logging.WARNING, logger="interface.http.posters"):
        png = poster_png(URL, f"{NAME} Lao Wang Noodles", CodeKind.CHECKOUT)
    keep("poster-checkout-no-cjk-font.png", png)

    assert decoded(png) == [URL]
    assert "printing 'Lao Wang Noodles'" in caplog.text


def test_the_same_inputs_give_the_same_poster_bytes() -> None:
    assert poster_png(URL, NAME, CodeKind.ENTRY) == poster_png(URL, NAME, CodeKind.ENTRY)
    assert poster_svg(URL, NAME, CodeKind.ENTRY) == poster_svg(URL, NAME, CodeKind.ENTRY)


def test_the_entry_svg_shows_the_venue_name_the_url_and_the_checkin_instructions() -> None:
    svg = poster_svg(URL, NAME, CodeKind.ENTRY)
    keep("poster-entry.svg", svg)

    shown = texts(svg)

    assert NAME in shown
    assert URL in shown
    assert "扫码登记入店" in shown
    assert "Scan to check in" in shown


def test_the_checkout_svg_shows_the_till_instructions() -> None:
    svg = poster_svg(CHECKOUT_URL, NAME, CodeKind.CHECKOUT)
    keep("poster-checkout.svg", svg)

    shown = texts(svg)

    assert "结账时扫码离店" in shown
    assert "Scan at the till to check out" in shown
    assert "扫码登记入店" not in shown


def test_a_venue_name_with_markup_stays_text_in_the_svg() -> None:
    name = "<script>alert(1)</script>"

    svg = poster_svg(URL, name, CodeKind.ENTRY)

    tags = {element.tag for element in ET.fromstring(svg).iter()}
    assert not any(tag.endswith("script") for tag in tags)
    assert name in "".join(texts(svg))
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in svg


def test_control_and_bidi_characters_in_a_venue_name_are_dropped() -> None:
    svg = poster_svg(URL, "老王\x00面馆\x0b\u202e  Lao\tWang\n", CodeKind.ENTRY)

    assert "老王面馆 Lao Wang" in texts(svg)


def test_the_svg_loads_nothing_from_outside() -> None:
    svg = poster_svg(URL, NAME, CodeKind.ENTRY)

    root = ET.fromstring(svg)
    for element in root.iter():
        local = element.tag.removeprefix(SVG)
        assert local not in {"style", "link", "image", "use", "script", "foreignObject"}
        for key, value in element.attrib.items():
            assert not key.endswith("href")
            assert "url(" not in value
    assert {element.tag for element in root.iter(f"{SVG}path")}, "the QR is drawn as paths"


def test_a_very_long_venue_name_is_cut_short_to_two_lines() -> None:
    name = "老王面馆" * 40

    shown = texts(poster_svg(URL, name, CodeKind.ENTRY))

    name_lines = [line for line in shown if "面馆" in line]
    assert len(name_lines) == 2
    assert name_lines[-1].endswith("…")


def test_a_url_too_long_for_a_reliable_qr_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        poster_png(URL + "/" + "x" * 300, NAME, CodeKind.ENTRY)


@pytest.mark.browser
def test_the_svg_poster_drawn_by_chromium_decodes_to_its_url() -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is not installed (make chromium)")
    svg = poster_svg(URL, NAME, CodeKind.ENTRY)
    page_html = (
        '<body style="margin:0"><img style="display:block" width="1240" height="1748" '
        f'src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}"></body>'
    )

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1240, "height": 1748})
            page.set_content(page_html, wait_until="load")
            screenshot = page.screenshot()
        finally:
            browser.close()
    keep("poster-entry-svg-in-chromium.png", screenshot)

    assert decoded(screenshot) == [URL]
