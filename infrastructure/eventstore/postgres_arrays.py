"""A batch of stored events as four PostgreSQL arrays, in the binary wire format, in one pass.

psycopg dumps a Python list element by element through its generic array dumper, the largest
part of a group commit's insert on the client; these arrays are packed with `struct` and handed
to psycopg as they are, by a dumper that only names their type.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg.abc import AdaptContext
from psycopg.adapt import Buffer, Dumper
from psycopg.pq import Format

# ndim, has-nulls flag, element type, then (size, lower bound) of the one dimension
_HEADER = struct.Struct("!iiIii")
_LENGTH = struct.Struct("!i")
_UUID_PREFIX = _LENGTH.pack(16)
_BIGINT = struct.Struct("!iq")
_INT = struct.Struct("!ii")

UUID_OID, BIGINT_OID, TEXT_OID, BYTEA_OID, INT_OID = 2950, 20, 25, 17, 23


class PackedArray(bytes):
    """A one-dimensional array already in PostgreSQL's binary format."""

    array_oid = 0


class UuidArray(PackedArray):
    array_oid = 2951


class BigintArray(PackedArray):
    array_oid = 1016


class TextArray(PackedArray):
    array_oid = 1009


class ByteaArray(PackedArray):
    array_oid = 1001


class IntArray(PackedArray):
    array_oid = 1007


class PackedArrayDumper(Dumper):
    """Hands a `PackedArray` over as it is, typed by its class.

    The type is set per instance, not on the class: psycopg would otherwise also take this
    dumper for every array of that type it is asked to dump by type name, anywhere.
    """

    format = Format.BINARY

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        self.oid = cast(type[PackedArray], cls).array_oid

    def dump(self, obj: bytes) -> Buffer:
        return obj


for _cls in (UuidArray, BigintArray, TextArray, ByteaArray, IntArray):
    psycopg.adapters.register_dumper(_cls, PackedArrayDumper)


def _uuid_bytes(value: UUID | str) -> bytes:
    return value.bytes if isinstance(value, UUID) else UUID(value).bytes


def _with_lengths(items: Sequence[bytes]) -> bytes:
    pack = _LENGTH.pack
    return b"".join([part for item in items for part in (pack(len(item)), item)])


def event_columns(
    events: Sequence[StoredEvent],
) -> tuple[UuidArray, BigintArray, TextArray, ByteaArray]:
    """The events' ids, versions, topics and states, as the insert's four array parameters."""
    n = len(events)
    ids = UuidArray(
        _HEADER.pack(1, 0, UUID_OID, n, 1)
        + b"".join([_UUID_PREFIX + _uuid_bytes(e.originator_id) for e in events])
    )
    pack_bigint = _BIGINT.pack
    versions = BigintArray(
        _HEADER.pack(1, 0, BIGINT_OID, n, 1)
        + b"".join([pack_bigint(8, e.originator_version) for e in events])
    )
    topics = TextArray(
        _HEADER.pack(1, 0, TEXT_OID, n, 1) + _with_lengths([e.topic.encode() for e in events])
    )
    states = ByteaArray(
        _HEADER.pack(1, 0, BYTEA_OID, n, 1) + _with_lengths([e.state for e in events])
    )
    return ids, versions, topics, states


def int_array(values: Sequence[int]) -> IntArray:
    """An `integer[]` parameter (values within 32 bits)."""
    pack = _INT.pack
    return IntArray(
        _HEADER.pack(1, 0, INT_OID, len(values), 1) + b"".join([pack(4, v) for v in values])
    )
