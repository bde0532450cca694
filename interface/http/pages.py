"""The shopper's phone pages (placeholder until the page lands)."""

from __future__ import annotations

from typing import Any

page_handlers: list[Any] = []
