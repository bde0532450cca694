"""The insert's packed arrays, read back by PostgreSQL as the values they were packed from."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg.pq import Format

from infrastructure.eventstore.postgres_arrays import PackedArrayDumper, event_columns
from tests.integration.conftest import DATABASE_URL, unavailable


@pytest.fixture
def connection() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(DATABASE_URL, autocommit=True)
    except psycopg.OperationalError:
        unavailable(f"PostgreSQL is not reachable at {DATABASE_URL}")
        raise


def test_postgresql_reads_each_packed_column_back_as_the_events_held_it(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    events = [
        StoredEvent(uuid.uuid4(), 1, "domain.visits:Visit.CheckedIn", b"\x00\x01state"),
        StoredEvent(str(uuid.uuid4()), 2**40, "naïve:主题.Event", b""),
        StoredEvent(uuid.uuid4(), 7, "t", bytes(range(256)) * 40),
    ]
    with connection:
        row = connection.execute(
            "SELECT %s::uuid[], %s::bigint[], %s::text[], %s::bytea[]",
            event_columns(events),
            binary=True,
        ).fetchone()
    assert row is not None
    assert row[0] == [uuid.UUID(str(e.originator_id)) for e in events]
    assert row[1] == [e.originator_version for e in events]
    assert row[2] == [e.topic for e in events]
    assert row[3] == [e.state for e in events]


def test_a_batch_of_one_event_is_an_array_of_one(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    event = StoredEvent(uuid.uuid4(), 3, "x", b"y")
    with connection:
        row = connection.execute(
            "SELECT cardinality(%s::uuid[]), cardinality(%s::bytea[])",
            (event_columns([event])[0], event_columns([event])[3]),
        ).fetchone()
    assert row == (1, 1)


def test_psycopg_keeps_its_own_dumpers_for_arrays_named_by_type() -> None:
    # What `COPY ... set_types(["uuid[]"])` would use: a list, never a packed array.
    for oid in (2951, 1016, 1009, 1001):
        assert psycopg.adapters.get_dumper_by_oid(oid, Format.BINARY) is not PackedArrayDumper
