"""A batch's history rows as PostgreSQL arrays in the binary wire format, packed in one pass
(the event store's `postgres_arrays` does the same for its insert; psycopg's generic array
dumper, element by element, was most of a rebuild's time on the client)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, date, datetime
from uuid import UUID

import psycopg
from psycopg.abc import AdaptContext

from infrastructure.eventstore.postgres_arrays import (
    BYTEA_OID,
    TEXT_OID,
    UUID_OID,
    ByteaArray,
    PackedArray,
    PackedArrayDumper,
    TextArray,
    UuidArray,
)

_HEADER = struct.Struct("!iiIii")
_LENGTH = struct.Struct("!i")
_NULL = _LENGTH.pack(-1)
_UUID_PREFIX = _LENGTH.pack(16)
_TIME = struct.Struct("!iq")
_DATE = struct.Struct("!ii")
TIMESTAMPTZ_OID, DATE_OID = 1184, 1082
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_EPOCH_DAY = _PG_EPOCH.date()


class TimestamptzArray(PackedArray):
    array_oid = 1185


class DateArray(PackedArray):
    array_oid = 1182


for _cls in (TimestamptzArray, DateArray):
    psycopg.adapters.register_dumper(_cls, PackedArrayDumper)


def register(context: AdaptContext) -> None:
    """Teach a cursor these arrays (a connection opened before this module was imported
    copied the global adapters without them)."""
    for cls in (TimestamptzArray, DateArray):
        context.adapters.register_dumper(cls, PackedArrayDumper)


def _header(oid: int, n: int, nulls: bool = False) -> bytes:
    return _HEADER.pack(1, int(nulls), oid, n, 1)


def uuids(values: Sequence[UUID]) -> UuidArray:
    """A `uuid[]` parameter."""
    return UuidArray(
        _header(UUID_OID, len(values)) + b"".join([_UUID_PREFIX + v.bytes for v in values])
    )


def byteas(values: Sequence[bytes]) -> ByteaArray:
    """A `bytea[]` parameter."""
    pack = _LENGTH.pack
    return ByteaArray(
        _header(BYTEA_OID, len(values))
        + b"".join([part for v in values for part in (pack(len(v)), v)])
    )


def texts(values: Sequence[str | None]) -> TextArray:
    """A `text[]` parameter; None is NULL."""
    pack = _LENGTH.pack
    parts = []
    for value in values:
        if value is None:
            parts.append(_NULL)
        else:
            encoded = value.encode()
            parts += [pack(len(encoded)), encoded]
    return TextArray(_header(TEXT_OID, len(values), None in values) + b"".join(parts))


def times(values: Sequence[datetime | None]) -> TimestamptzArray:
    """A `timestamptz[]` parameter (aware datetimes); None is NULL."""
    pack = _TIME.pack
    parts = []
    for value in values:
        if value is None:
            parts.append(_NULL)
        else:
            delta = value - _PG_EPOCH
            micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            parts.append(pack(8, micros))
    return TimestamptzArray(_header(TIMESTAMPTZ_OID, len(values), None in values) + b"".join(parts))


def dates(values: Sequence[date]) -> DateArray:
    """A `date[]` parameter."""
    pack = _DATE.pack
    return DateArray(
        _header(DATE_OID, len(values))
        + b"".join([pack(4, (v - _PG_EPOCH_DAY).days) for v in values])
    )
