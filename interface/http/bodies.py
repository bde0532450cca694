"""Strict JSON request bodies: the wrong type is refused, never coerced (`"9"` is not `9`).

Litestar converts bodies leniently, so handlers take the raw bytes and decode them here,
once, with msgspec in strict mode. A route declares the Struct it decodes for the API
document with `interface.http.contract.operation(body=...)`.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from litestar.exceptions import ValidationException

from interface.http.field_errors import field_error, malformed_json

T = TypeVar("T")


def decode_body(data: bytes, schema: type[T]) -> T:
    """Decode and validate a JSON body; a 400 problem names the field and rule, not the value."""
    try:
        return msgspec.json.decode(data, type=schema, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(
            "the request does not match the schema", extra=[field_error(str(exc))]
        ) from None
    except msgspec.DecodeError:
        raise ValidationException(
            "the request body is not valid JSON", extra=[malformed_json()]
        ) from None
