"""msgspec's and litestar's validation messages become a field and words a client can show."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from interface.http.case_schemas import Approval, NewAgency, NewCase, NewOfficer
from interface.http.field_errors import field_error
from interface.http.schemas import CheckOutBody, NewVenue, NewVisitor

VENUE = {"name": "V", "address": "A", "region": "110105", "category": "food"}
VISITOR = {"name": "A", "phone": "+86 138 0013 8000"}
CASE = {"index": {}, "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}


def refusal(schema: type, body: Any) -> dict[str, str]:
    try:
        msgspec.json.decode(msgspec.json.encode(body), type=schema, strict=True)
    except msgspec.ValidationError as exc:
        return field_error(str(exc))
    raise AssertionError("the body was accepted")


@pytest.mark.parametrize(
    ("schema", "body", "field", "message"),
    [
        (
            NewVenue,
            {**VENUE, "region": "Beijing"},
            "region",
            "region must be a six-digit administrative division code (GB/T 2260), such as 110105",
        ),
        (
            NewVisitor,
            {**VISITOR, "phone": "call me"},
            "phone",
            "phone must be a phone number: 6 to 24 digits, spaces or dashes, with an optional "
            "leading +",
        ),
        (
            NewVenue,
            {**VENUE, "capacity": "9"},
            "capacity",
            "capacity must be a whole number or null, not text",
        ),
        (NewVenue, {**VENUE, "capacity": 0}, "capacity", "capacity must be at least 1"),
        (
            NewVenue,
            {**VENUE, "max_dwell_minutes": 5000},
            "max_dwell_minutes",
            "max_dwell_minutes must be at most 1440",
        ),
        (NewVisitor, {**VISITOR, "name": ""}, "name", "name must not be empty"),
        (NewVisitor, {**VISITOR, "name": "x" * 81}, "name", "name must have at most 80 characters"),
        (NewVisitor, {"name": "A"}, "phone", "phone is required"),
        (NewVisitor, {**VISITOR, "admin": True}, "admin", "admin is not a field of this request"),
        (
            NewVisitor,
            {**VISITOR, "dependents": [""]},
            "dependents[0]",
            "dependents[0] must not be empty",
        ),
        (
            NewVisitor,
            {**VISITOR, "dependents": ["a"] * 11},
            "dependents",
            "dependents must have at most 10 items",
        ),
        (NewVisitor, [], "", "the body must be an object, not a list"),
        (
            NewAgency,
            {"name": "A", "jurisdiction": []},
            "jurisdiction",
            "jurisdiction must not be empty",
        ),
        (
            NewCase,
            {**CASE, "index": {"phone": 5}},
            "index.phone",
            "index.phone must be text or null, not a whole number",
        ),
        (
            NewCase,
            {**CASE, "from": "yesterday"},
            "from",
            "from must be an RFC 3339 time with a UTC offset, such as 2026-03-04T09:30:00Z",
        ),
        (
            NewCase,
            {"index": {"visitor_id": "x"}},
            "index.visitor_id",
            "index.visitor_id must be a UUID",
        ),
        (NewCase, {"index": {"who": 1}}, "index.who", "index.who is not a field of this request"),
        (NewOfficer, {"name": "A", "role": "boss"}, "role", "role must be tracer or supervisor"),
        (Approval, {"approve": "yes"}, "approve", "approve must be true or false, not text"),
        (
            CheckOutBody,
            {"visit_id": 5},
            "visit_id",
            "visit_id must be a UUID or null, not a whole number",
        ),
    ],
)
def test_a_refusal_names_the_field_and_says_what_it_must_be(
    schema: type, body: Any, field: str, message: str
) -> None:
    assert refusal(schema, body) == {"field": field, "message": message}


def test_an_unknown_field_that_is_not_a_name_is_not_repeated() -> None:
    secret = "王小明 +86 138 0013 8000"
    found = refusal(NewVisitor, {**VISITOR, secret: 1})
    assert found == {"field": "", "message": "the body has a field that this request does not take"}


def test_a_refused_value_is_never_repeated() -> None:
    phone = "138-call-0013-8000"
    found = refusal(NewVisitor, {**VISITOR, "phone": phone})
    assert phone not in found["message"]


def test_a_parameter_gets_its_name_and_allowed_values() -> None:
    found = field_error("Invalid enum value 'week'", "bucket", {"bucket": ["hour", "day"]})
    assert found == {"field": "bucket", "message": "bucket must be one of: hour, day"}


def test_an_unknown_message_still_names_the_field_without_the_value() -> None:
    found = field_error("Something new about 'secret value'", "tz")
    assert found == {"field": "tz", "message": "tz is not valid"}
