"""Event states as MessagePack: every event class of the domain round-trips with its types."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import msgspec
import pytest
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import MapperDeserialisationError

import domain
from domain.visits import Visit
from infrastructure.eventstore.codec import ENVELOPE, EventCodec
from infrastructure.eventstore.mapper import FORMAT, ScopedCipherMapper
from infrastructure.keys.keystore import KeyStore, MasterKeys, SQLiteKeyBackend

AT = datetime(2026, 3, 4, 9, 30, 15, 123456, tzinfo=UTC)


def domain_event_classes() -> list[type]:
    """Every event class the domain defines (its aggregates' nested events)."""
    found: dict[str, type] = {}
    for module_info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{module_info.name}")
        for _, aggregate in inspect.getmembers(module, inspect.isclass):
            if aggregate.__module__ != module.__name__:
                continue
            for _, member in inspect.getmembers(aggregate, inspect.isclass):
                if issubclass(member, DomainEvent) and member.__module__ == module.__name__:
                    found[f"{member.__module__}:{member.__qualname__}"] = member
    return list(found.values())


def sample(hint: Any, n: int) -> Any:
    """A value of the declared type; distinct per field so swaps would show."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is list:
        return [sample(args[0], n), sample(args[0], n + 1)]
    if origin is tuple:
        return (sample(args[0], n), sample(args[0], n + 1))
    if args and type(None) in args:  # Optional: the non-None member
        return sample(next(a for a in args if a is not type(None)), n)
    values = {
        uuid.UUID: uuid.UUID(int=n + 1),
        datetime: AT.replace(second=n % 60),
        date: date(2026, 3, 1 + n % 28),
        str: f"值 {n}",
        int: n * 7,
        bool: n % 2 == 0,
        Decimal: Decimal(f"{n}.25"),
    }
    return values.get(hint, f"value {n}")


def sample_state(event_class: type) -> dict[str, Any]:
    hints = get_type_hints(event_class)
    return {
        field.name: sample(hints[field.name], i)
        for i, field in enumerate(dataclasses.fields(event_class))
        if field.name not in ENVELOPE
    }


def test_the_domain_has_the_events_this_test_walks() -> None:
    names = {c.__qualname__ for c in domain_event_classes()}
    assert {"Visit.CheckedIn", "Visit.CheckedOut", "Visitor.Registered", "Case.Accessed"} <= names


@pytest.mark.parametrize("event_class", domain_event_classes(), ids=lambda c: c.__qualname__)
def test_every_domain_event_round_trips_with_its_types(event_class: type) -> None:
    codec = EventCodec()
    state = sample_state(event_class)
    decoded = codec.decode(event_class, codec.encode(state))
    assert decoded == state
    for name, value in state.items():
        assert type(decoded[name]) is type(value), name


def test_a_state_of_the_wrong_shape_is_refused() -> None:
    codec = EventCodec()
    data = codec.encode({"visitor_id": "not a uuid", "at": "yesterday"})
    with pytest.raises(msgspec.ValidationError):
        codec.decode(Visit.CheckedIn, data)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    store = KeyStore(SQLiteKeyBackend(tmp_path / "keys.db"), MasterKeys({1: b"k" * 32}, 1))
    yield store  # type: ignore[misc]
    store.close()


def test_a_state_in_no_format_the_mapper_writes_is_refused(keys: KeyStore) -> None:
    guardian = uuid.uuid4()
    visit = Visit(
        id=uuid.uuid4(), visitor_id=guardian, guardian_id=guardian, venue_id=uuid.uuid4(),
        at=AT, via="scan",
    )  # fmt: skip
    event = next(iter(visit.collect_events()))
    mapper = ScopedCipherMapper(keys)
    new = mapper.to_stored_event(event)
    assert new.state[0] == FORMAT
    assert vars(mapper.to_domain_event(new)) == vars(event)
    # Format 1 (zlib-compressed JSON) is no longer read.
    retired = dataclasses.replace(new, state=bytes([1]) + new.state[1:])
    with pytest.raises(MapperDeserialisationError, match="unknown stored format"):
        mapper.to_domain_event(retired)


@dataclasses.dataclass(frozen=True)
class VisitedV1:
    originator_id: uuid.UUID
    originator_version: int
    venue_id: uuid.UUID
    at: datetime


@dataclasses.dataclass(frozen=True)
class VisitedV2:
    """VisitedV1 after two fields were added, with defaults (STYLE: stored fields only grow)."""

    originator_id: uuid.UUID
    originator_version: int
    venue_id: uuid.UUID
    at: datetime
    note: str = "none"
    tags: list[str] = dataclasses.field(default_factory=list)


def test_an_event_stored_before_a_field_was_added_gets_its_default() -> None:
    codec = EventCodec()
    old = {"venue_id": uuid.UUID(int=7), "at": AT}
    decoded = codec.decode(VisitedV2, codec.encode(old))
    assert decoded == {**old, "note": "none", "tags": []}


def test_fields_a_class_no_longer_declares_are_ignored() -> None:
    codec = EventCodec()
    new = {"venue_id": uuid.UUID(int=7), "at": AT, "note": "window seat", "tags": ["a"]}
    assert codec.decode(VisitedV1, codec.encode(new)) == {"venue_id": uuid.UUID(int=7), "at": AT}


def test_a_missing_field_without_default_is_refused() -> None:
    codec = EventCodec()
    with pytest.raises(msgspec.ValidationError, match="venue_id"):
        codec.decode(VisitedV1, codec.encode({"at": AT}))
