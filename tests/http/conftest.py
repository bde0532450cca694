"""Fixtures of the HTTP suite's browser tests: Debian's chromium, driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def fonts_config(folder: Path) -> dict[str, str]:
    """Let chromium also find the Noto CJK font the project ships, so screenshots show Chinese
    on a machine without a system CJK font (phones have their own)."""
    try:
        font_dir = resources.files("manimgx_fonts_cjk")
    except ModuleNotFoundError:
        return {}
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{font_dir}</dir>\n  <cachedir>{folder / 'cache'}</cachedir>\n</fontconfig>\n"
    )
    return {"FONTCONFIG_FILE": str(config)}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Debian's headless chromium; never a browser downloaded by Playwright."""
    if not CHROMIUM.exists():
        reason = f"the browser tests need Debian's chromium at {CHROMIUM} (`make chromium`)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    env = {**os.environ, **fonts_config(tmp_path_factory.mktemp("fonts"))}
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env
        )
        try:
            yield launched
        finally:
            launched.close()
