"""JSON-lines logs: one object a line, allow-listed fields only, no tokens or phone numbers."""

from __future__ import annotations

import io
import json
import logging
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from interface.http.observability import (
    JsonLinesFormatter,
    PrivacyFilter,
    RedactingTextFormatter,
    configure_logging,
    redact,
)


class Captured:
    def __init__(self, logger: logging.Logger, stream: io.StringIO) -> None:
        self.logger = logger
        self.stream = stream

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def one(self) -> dict[str, Any]:
        (line,) = self.lines()
        return line


@pytest.fixture
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    handler.addFilter(PrivacyFilter())
    logger = logging.getLogger(f"fangxin.test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield Captured(logger, stream)
    logger.removeHandler(handler)


def test_a_record_is_one_json_object_on_one_line(captured: Captured) -> None:
    captured.logger.warning("first line\nsecond line")

    (line,) = captured.stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "first line\nsecond line"
    assert record["level"] == "warning"
    assert record["logger"] == captured.logger.name
    assert record["ts"].endswith("+00:00")
    assert isinstance(record["pid"], int)


def test_allowed_extra_fields_are_kept(captured: Captured) -> None:
    captured.logger.info(
        "answered",
        extra={"route": "/v1/venues/{venue_id}", "status": 201, "duration_ms": 3.5, "pid": 42},
    )

    record = captured.one()
    assert record["route"] == "/v1/venues/{venue_id}"
    assert record["status"] == 201
    assert record["duration_ms"] == 3.5
    assert record["pid"] == 42


def test_extra_fields_outside_the_allow_list_are_dropped(captured: Captured) -> None:
    captured.logger.info(
        "registered",
        extra={
            "visitor_name": "Wang Fang",
            "phone": "+8613800138000",
            "token": "abc",
            "path": "/v1/venues/9d5a4c0e",
        },
    )

    text = captured.stream.getvalue()
    assert set(captured.one()) == {"ts", "level", "logger", "message", "pid"}
    for secret in ("Wang Fang", "13800138000", "9d5a4c0e"):
        assert secret not in text


def test_a_bearer_token_in_a_message_is_redacted(captured: Captured) -> None:
    token = secrets.token_urlsafe(32)

    captured.logger.info("header was Authorization: Bearer %s", token)

    assert token not in captured.stream.getvalue()
    assert "Bearer [redacted]" in captured.one()["message"]


def test_a_bare_token_in_a_message_is_redacted(captured: Captured) -> None:
    token = secrets.token_urlsafe(32)

    captured.logger.info("issued %s to someone", token)

    assert captured.one()["message"] == "issued [redacted] to someone"


@pytest.mark.parametrize(
    "phone",
    ["+8613800138000", "+86 138 0013 8000", "13800138000", "138-0013-8000", "010-12345678"],
)
def test_phone_numbers_in_a_message_are_redacted(captured: Captured, phone: str) -> None:
    captured.logger.info("visitor %s checked in", phone)

    assert captured.one()["message"] == "visitor [phone] checked in"


def test_ordinary_figures_dates_and_names_of_things_are_kept() -> None:
    text = (
        "projection visits at position 12345678 on 2026-11-05T08:00:00+08:00, "
        "route /v1/venues/{venue_id}, metric fangxin_http_request_duration_seconds_bucket"
    )

    assert redact(text) == text


def test_secrets_given_as_key_values_are_redacted() -> None:
    assert redact('token=abc&x=1 "password": "hunter2"') == (
        'token=[redacted]&x=1 "password": "[redacted]"'
    )


def test_e_mail_addresses_are_redacted() -> None:
    assert redact("sent to wang.fang@example.cn") == "sent to [email]"


def test_allowed_fields_are_redacted_too(captured: Captured) -> None:
    captured.logger.info("odd", extra={"error": "bad header Bearer abc.def"})

    assert captured.one()["error"] == "bad header Bearer [redacted]"


def test_a_traceback_is_redacted_and_names_its_error_type(captured: Captured) -> None:
    try:
        raise ValueError("duplicate phone +8613800138000")
    except ValueError:
        captured.logger.exception("failed")

    record = captured.one()
    assert record["error_type"] == "ValueError"
    assert "duplicate phone [phone]" in record["traceback"]
    assert "13800138000" not in captured.stream.getvalue()


def test_a_message_whose_arguments_do_not_fit_is_still_logged(captured: Captured) -> None:
    too_few: tuple[str, ...] = ("one",)
    captured.logger.info("two %s %s", *too_few)

    assert captured.one()["message"] == "two %s %s"


def test_the_text_format_is_redacted_as_well() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "call %s", ("13800138000",), None)

    assert RedactingTextFormatter("%(message)s").format(record) == "call [phone]"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("uvicorn.access")
    access_state = (list(access.handlers), access.level, access.propagate)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    access.handlers[:], access.level, access.propagate = access_state


@pytest.mark.usefixtures("restore_logging")
def test_configuring_twice_leaves_one_handler_and_quiets_access_lines() -> None:
    configure_logging("info", "json")
    configure_logging("debug", "json")

    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == "fangxin"]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, JsonLinesFormatter)
    assert root.level == logging.DEBUG
    assert logging.getLogger("uvicorn.access").level == logging.WARNING


@pytest.mark.usefixtures("restore_logging")
def test_an_unknown_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        configure_logging("info", "xml")
    with pytest.raises(ValueError, match="level"):
        configure_logging("chatty", "json")
