"""Validation errors in words a client can show: `{field, message}`, never the value sent.

msgspec (bodies) and litestar (query and path parameters, through msgspec) describe a refusal
in a machine's terms: ``Expected `str` matching regex '^[0-9]{6}$' - at `$.region` ``. Here
each such message becomes a field name (`region`, `index.phone`, `dependents[0]`) and a
sentence (`region must be a six-digit administrative division code (GB/T 2260)`). Messages
are rebuilt from the rule alone, so nothing the client sent is repeated, apart from the name
of an unknown field when it looks like a field name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from interface.http.schemas import PATTERN_WORDS

# A JSON body's own type is checked first; these name what it must be instead.
TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "uuid": "a UUID",
    "datetime": "an RFC 3339 time",
}
RFC3339_WORDS = "an RFC 3339 time with a UTC offset, such as 2026-03-04T09:30:00Z"
# An unknown field's name is repeated only when it reads like one (never free text).
TAME_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def field_error(
    message: str, field: str = "", choices: Mapping[str, list[str]] | None = None
) -> dict[str, str]:
    """A msgspec message as `{field, message}`; `field` names a parameter the message is about.

    `choices` gives the allowed values of enumerated parameters, by name.
    """
    at = _AT.search(message)
    if at is not None:
        message = message[: at.start()]
        field = _join(field, _dotted(at.group("path")))
    for pattern, words in _RULES:
        found = pattern.fullmatch(message)
        if found is not None:
            name, text = words(field, found, choices or {})
            return {"field": name, "message": text}
    return {"field": field, "message": f"{_subject(field)} is not valid"}


def malformed_json() -> dict[str, str]:
    """The body could not be read as JSON at all."""
    return {"field": "", "message": "the body is not valid JSON"}


def _dotted(path: str) -> str:
    # msgspec's `$.index.phone` or `$.dependents[0]`, without the `$.`.
    return path.removeprefix(".")


def _join(parent: str, child: str) -> str:
    if not parent or not child:
        return parent or child
    return f"{parent}{child}" if child.startswith("[") else f"{parent}.{child}"


def _subject(field: str) -> str:
    return field or "the body"


def _types(text: str) -> str:
    words = [TYPE_WORDS.get(part.strip(), part.strip()) for part in text.split("|")]
    return " or ".join(words)


Words = Callable[[str, re.Match[str], Mapping[str, list[str]]], tuple[str, str]]


def _missing(field: str, found: re.Match[str], _: Mapping[str, list[str]]) -> tuple[str, str]:
    name = _join(field, found.group(1))
    return name, f"{name} is required"


def _unknown(field: str, found: re.Match[str], _: Mapping[str, list[str]]) -> tuple[str, str]:
    given = found.group(1)
    if TAME_NAME.fullmatch(given):
        name = _join(field, given)
        return name, f"{name} is not a field of this request"
    return field, f"{_subject(field)} has a field that this request does not take"


def _wrong_type(field: str, found: re.Match[str], _: Mapping[str, list[str]]) -> tuple[str, str]:
    expected, got = _types(found.group(1)), _types(found.group(2))
    return field, f"{_subject(field)} must be {expected}, not {got}"


def _length(field: str, found: re.Match[str], _: Mapping[str, list[str]]) -> tuple[str, str]:
    kind, op, limit = found.group(1), found.group(2), int(found.group(3))
    unit = "character" if kind == "str" else "item" if kind == "array" else "entry"
    plural = unit if limit == 1 else f"{unit}s"
    if op == ">=" and limit == 1:
        return field, f"{_subject(field)} must not be empty"
    bound = "at least" if op == ">=" else "at most"
    return field, f"{_subject(field)} must have {bound} {limit} {plural}"


def _range(field: str, found: re.Match[str], _: Mapping[str, list[str]]) -> tuple[str, str]:
    op, limit = found.group(2), found.group(3)
    bound = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}[op]
    return field, f"{_subject(field)} must be {bound} {limit}"


def _pattern(field: str, found: re.Match[str], _: Mapping[str, list[str]]) -> tuple[str, str]:
    words = PATTERN_WORDS.get(found.group(1).replace("\\\\", "\\"))
    if words is None:
        return field, f"{_subject(field)} is not in the expected form"
    return field, f"{_subject(field)} must be {words}"


def _time(field: str, _: re.Match[str], __: Mapping[str, list[str]]) -> tuple[str, str]:
    return field, f"{_subject(field)} must be {RFC3339_WORDS}"


def _uuid(field: str, _: re.Match[str], __: Mapping[str, list[str]]) -> tuple[str, str]:
    return field, f"{_subject(field)} must be a UUID"


def _choice(field: str, _: re.Match[str], choices: Mapping[str, list[str]]) -> tuple[str, str]:
    allowed = choices.get(field)
    if allowed:
        return field, f"{_subject(field)} must be one of: {', '.join(allowed)}"
    return field, f"{_subject(field)} is not one of the allowed values"


def _required_parameter(
    field: str, found: re.Match[str], _: Mapping[str, list[str]]
) -> tuple[str, str]:
    name = found.group(1) or field
    return name, f"{name} is required"


_RULES: list[tuple[re.Pattern[str], Words]] = [
    (re.compile(r"Object missing required field `(.+)`"), _missing),
    (re.compile(r"Object contains unknown field `(.*)`", re.DOTALL), _unknown),
    (re.compile(r"Expected `([^`]+)`, got `([^`]+)`"), _wrong_type),
    (re.compile(r"Expected `(str|array|object)` of length (>=|<=) (\d+)"), _length),
    (re.compile(r"Expected `(int|float)` (>=|<=|>|<) (-?[0-9.e+]+)"), _range),
    (re.compile(r"Expected `str` matching regex '(.*)'", re.DOTALL), _pattern),
    (re.compile(r"Invalid RFC3339 encoded (?:datetime|date|time)"), _time),
    (re.compile(r"Invalid UUID"), _uuid),
    (re.compile(r"Invalid enum value .*", re.DOTALL), _choice),
    (
        re.compile(r"Missing required (?:\w+ )?parameter '?([^']*)'?.*", re.DOTALL),
        _required_parameter,
    ),
]
