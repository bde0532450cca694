"""The font PNG posters set Chinese in, and a stand-in when none can draw it."""

from __future__ import annotations

import contextlib
import logging
from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PACKAGED_FONT = ("manimgx_fonts_cjk", "NotoSansCJK-VF.otf.ttc")


SYSTEM_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
)

log = logging.getLogger("interface.http.posters")


NOTDEF_PROBE = "\uffff"  # a noncharacter: every font draws its missing-glyph box for it


def find_cjk_font() -> Path | None:
    """The font file PNG posters set Chinese in: the pinned package's, a Debian one, or None."""
    try:
        packaged = resources.files(PACKAGED_FONT[0]) / PACKAGED_FONT[1]
    except ModuleNotFoundError:
        packaged = None
    if isinstance(packaged, Path) and packaged.is_file():
        return packaged
    return next((path for path in SYSTEM_FONTS if path.is_file()), None)


class _Face:
    """A font file (or Pillow's own Latin-only font) at any size, and what it can draw."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._index = _simplified_chinese_index(path) if path is not None else 0
        self._fonts: dict[tuple[int, bool], ImageFont.FreeTypeFont] = {}
        self._notdef = self._glyph(NOTDEF_PROBE)
        self._drawable: dict[str, bool] = {}

    def font(self, size: int, *, bold: bool) -> ImageFont.FreeTypeFont:
        """This face at `size` pixels, bold or regular."""
        key = (size, bold)
        if key not in self._fonts:
            self._fonts[key] = self._load(size, bold=bold)
        return self._fonts[key]

    def _load(self, size: int, *, bold: bool) -> ImageFont.FreeTypeFont:
        if self._path is None:
            return _default_font(size)
        path = self._path
        bold_file = path.with_name(path.name.replace("Regular", "Bold"))
        if bold and bold_file != path and bold_file.is_file():
            path = bold_file
        font = ImageFont.truetype(str(path), size, index=self._index)
        with contextlib.suppress(OSError):  # not a variable font: its one weight it is
            font.set_variation_by_axes([700 if bold else 400])
        return font

    def width(self, text: str, size: int, *, bold: bool) -> float:
        """How wide `text` is drawn at `size`, in pixels."""
        return self.font(size, bold=bold).getlength(text)

    def renders(self, text: str) -> bool:
        """Whether every character of `text` has a glyph here (no missing-glyph boxes)."""
        return all(self._has_glyph(ch) for ch in text if not ch.isspace())

    def _has_glyph(self, ch: str) -> bool:
        if ch not in self._drawable:
            self._drawable[ch] = self._glyph(ch) != self._notdef
        return self._drawable[ch]

    def _glyph(self, ch: str) -> bytes:
        image = Image.new("L", (64, 64))
        ImageDraw.Draw(image).text((8, 8), ch, font=self.font(32, bold=False), fill=255)
        return image.tobytes()


@lru_cache(maxsize=4)
def _face(path: Path | None) -> _Face:
    if path is None:
        log.warning("No CJK font found; PNG posters will print their Chinese text in English")
        return _Face(None)
    try:
        return _Face(path)
    except OSError:
        log.warning("Cannot load the font %s; PNG posters will print English only", path)
        return _Face(None)


def _simplified_chinese_index(path: Path) -> int:
    """The face of a font collection that has simplified Chinese glyph forms, else the first."""
    for index in range(16):
        try:
            family = ImageFont.truetype(str(path), 12, index=index).getname()[0] or ""
        except OSError:
            break
        if family.endswith((" SC", " CN")) or "GB" in family:
            return index
    return 0


def _default_font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType, which PNG posters need")
    return font
