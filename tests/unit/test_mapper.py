"""The encrypting mapper: round trips, forgotten events, refused tampering."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from domain.forgetting import Forgotten
from domain.people import Visitor
from domain.visits import CheckoutReason, Visit
from infrastructure.eventstore.mapper import FORMAT_CLEAR_IDS, ScopedCipherMapper, _context
from infrastructure.keys.crypto import seal
from infrastructure.keys.keystore import (
    KEY_ID_BYTES,
    KeyDestroyedError,
    KeyStore,
    MasterKeys,
    SQLiteKeyBackend,
    UnknownKeyError,
)

AT = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    store = KeyStore(SQLiteKeyBackend(tmp_path / "keys.db"), MasterKeys({1: b"k" * 32}, 1))
    yield store  # type: ignore[misc]
    store.close()


@pytest.fixture
def mapper(keys: KeyStore) -> ScopedCipherMapper:
    return ScopedCipherMapper(keys)


def visitor_events() -> tuple[Visitor, list[object]]:
    visitor = Visitor(
        id=uuid.uuid4(),
        name="王秀英",
        phone="+8613912345678",
        phone_index="idx",
        token_hash="hash",
        dependent_ids=[uuid.uuid4()],
        dependent_names=["小明"],
        assisted=False,
    )
    return visitor, list(visitor.collect_events())


def visit_events(guardian: uuid.UUID, at: datetime = AT) -> list[object]:
    visit = Visit(
        id=uuid.uuid4(),
        visitor_id=guardian,
        guardian_id=guardian,
        venue_id=uuid.uuid4(),
        at=at,
        via="scan",
    )
    visit.check_out(at + timedelta(minutes=30), CheckoutReason.PAYMENT)
    return list(visit.collect_events())


def shared_runs(first: bytes, second: bytes) -> set[bytes]:
    """Every run of 16 bytes (the length of a key id) found in both."""
    runs = {first[i : i + KEY_ID_BYTES] for i in range(len(first) - KEY_ID_BYTES + 1)}
    return {second[i : i + KEY_ID_BYTES] for i in range(len(second) - KEY_ID_BYTES + 1)} & runs


def key_id_links(first: bytes, second: bytes) -> set[bytes]:
    """What could link two stored states: their first key id (after the format byte and the
    key count) when it is the same, and any 16 bytes found in both elsewhere."""
    visible = {first[2:18]} & {second[2:18]}
    return (
        visible
        | shared_runs(first[18:], second[18:])
        | shared_runs(first[2:18], second[18:])
        | shared_runs(first[18:], second[2:18])
    )


def stored_with_every_key_id_in_clear(
    mapper: ScopedCipherMapper, keys: KeyStore, event: object, scopes: list[str]
) -> StoredEvent:
    """An event as stores kept it before key ids were sealed (format 2)."""
    stored = mapper.to_stored_event(event)  # type: ignore[arg-type]
    pairs = [keys.key_for(scope) for scope in scopes]
    key_ids = b"".join(key_id for key_id, _ in pairs)
    header = bytes([FORMAT_CLEAR_IDS, len(pairs)]) + key_ids
    aead = mapper._aead(key_ids, [key for _, key in pairs])
    plain = mapper._codec.encode(
        {k: v for k, v in vars(event).items() if k not in ("originator_id", "originator_version")}
    )
    context = _context(stored.originator_id, stored.originator_version, stored.topic, header)
    return replace(stored, state=header + seal(aead, plain, context))


def test_an_event_round_trips_with_its_types(mapper: ScopedCipherMapper) -> None:
    _, [registered] = visitor_events()
    stored = mapper.to_stored_event(registered)  # type: ignore[arg-type]
    back = mapper.to_domain_event(stored)
    assert isinstance(back, Visitor.Registered)
    assert back.name == "王秀英"
    assert isinstance(back.dependent_ids[0], uuid.UUID)
    assert back.timestamp == registered.timestamp  # type: ignore[attr-defined]


def test_the_stored_state_shows_no_personal_data(mapper: ScopedCipherMapper) -> None:
    _, [registered] = visitor_events()
    state = mapper.to_stored_event(registered).state  # type: ignore[arg-type]
    for secret in ("王秀英", "13912345678", "小明"):
        assert secret.encode() not in state


def test_visit_events_carry_two_key_ids(mapper: ScopedCipherMapper) -> None:
    for event in visit_events(uuid.uuid4()):
        state = mapper.to_stored_event(event).state  # type: ignore[arg-type]
        assert state[1] == 2


def test_destroying_the_visitor_key_forgets_their_events(
    mapper: ScopedCipherMapper, keys: KeyStore
) -> None:
    visitor, [registered] = visitor_events()
    stored = [mapper.to_stored_event(e) for e in [registered, *visit_events(visitor.id)]]  # type: ignore[list-item]
    keys.destroy_visitor(visitor.id)
    back = [mapper.to_domain_event(s) for s in stored]
    assert all(isinstance(e, Forgotten) for e in back)
    assert [e.originator_version for e in back] == [s.originator_version for s in stored]


def test_destroying_a_day_key_forgets_that_days_visits_only(
    mapper: ScopedCipherMapper, keys: KeyStore
) -> None:
    visitor, [registered] = visitor_events()
    stored_visits = [mapper.to_stored_event(e) for e in visit_events(visitor.id)]  # type: ignore[arg-type]
    stored_visitor = mapper.to_stored_event(registered)  # type: ignore[arg-type]
    keys.destroy_days_before(AT.date().replace(day=5))
    assert all(isinstance(mapper.to_domain_event(s), Forgotten) for s in stored_visits)
    assert isinstance(mapper.to_domain_event(stored_visitor), Visitor.Registered)


def test_nothing_can_be_written_under_a_destroyed_key(
    mapper: ScopedCipherMapper, keys: KeyStore
) -> None:
    visitor, _ = visitor_events()
    keys.destroy_visitor(visitor.id)
    with pytest.raises(KeyDestroyedError):
        mapper.to_stored_event(visit_events(visitor.id)[0])  # type: ignore[arg-type]


def test_a_payload_moved_to_another_event_is_refused(mapper: ScopedCipherMapper) -> None:
    _, [registered] = visitor_events()
    stored = mapper.to_stored_event(registered)  # type: ignore[arg-type]
    for moved in (
        replace(stored, originator_id=uuid.uuid4()),
        replace(stored, originator_version=2),
        replace(stored, topic="domain.people:Merchant.Registered"),
    ):
        with pytest.raises(MapperDeserialisationError):
            mapper.to_domain_event(moved)


def test_a_flipped_ciphertext_bit_is_refused(mapper: ScopedCipherMapper) -> None:
    _, [registered] = visitor_events()
    stored = mapper.to_stored_event(registered)  # type: ignore[arg-type]
    state = bytearray(stored.state)
    state[-5] ^= 1
    with pytest.raises(MapperDeserialisationError):
        mapper.to_domain_event(replace(stored, state=bytes(state)))


@pytest.mark.parametrize(
    ("which", "offset"),
    [("visitor", 0), ("visitor", KEY_ID_BYTES - 1), ("visit", 0), ("visit", KEY_ID_BYTES - 1)],
)
def test_a_key_id_with_one_flipped_byte_is_refused_not_forgotten(
    mapper: ScopedCipherMapper, which: str, offset: int
) -> None:
    visitor, [registered] = visitor_events()
    event = registered if which == "visitor" else visit_events(visitor.id)[0]
    stored = mapper.to_stored_event(event)  # type: ignore[arg-type]
    state = bytearray(stored.state)
    state[2 + offset] ^= 0x01  # the key ids follow the format byte and their count

    with pytest.raises(MapperDeserialisationError, match="never had") as refused:
        mapper.to_domain_event(replace(stored, state=bytes(state)))

    assert isinstance(refused.value.__cause__, UnknownKeyError)


@pytest.mark.parametrize("offset", [0, 20, 43])
def test_a_visits_sealed_key_id_with_one_flipped_byte_is_refused_not_forgotten(
    mapper: ScopedCipherMapper, keys: KeyStore, offset: int
) -> None:
    visitor, _ = visitor_events()
    stored = mapper.to_stored_event(visit_events(visitor.id)[0])  # type: ignore[arg-type]
    keys.destroy_visitor(visitor.id)  # what the sealed id names reads as erased when intact
    state = bytearray(stored.state)
    state[2 + KEY_ID_BYTES + offset] ^= 0x01

    assert isinstance(mapper.to_domain_event(stored), Forgotten)
    with pytest.raises(MapperDeserialisationError, match="sealed key id"):
        mapper.to_domain_event(replace(stored, state=bytes(state)))


def test_a_sealed_key_id_moved_to_another_visit_is_refused(mapper: ScopedCipherMapper) -> None:
    visitor, _ = visitor_events()
    first = mapper.to_stored_event(visit_events(visitor.id)[0])  # type: ignore[arg-type]
    second = mapper.to_stored_event(visit_events(visitor.id)[0])  # type: ignore[arg-type]
    sealed = slice(2 + KEY_ID_BYTES, 2 + KEY_ID_BYTES + 44)
    state = bytearray(second.state)
    state[sealed] = first.state[sealed]

    with pytest.raises(MapperDeserialisationError, match="sealed key id"):
        mapper.to_domain_event(replace(second, state=bytes(state)))


def test_no_key_id_links_a_registration_to_its_visits_or_visits_of_other_days(
    mapper: ScopedCipherMapper,
) -> None:
    visitor, [registered] = visitor_events()
    other, _ = visitor_events()
    monday = [mapper.to_stored_event(e).state for e in visit_events(visitor.id)]  # type: ignore[arg-type]
    monday += [mapper.to_stored_event(e).state for e in visit_events(visitor.id)]  # type: ignore[arg-type]
    tuesday = [
        mapper.to_stored_event(e).state  # type: ignore[arg-type]
        for e in visit_events(visitor.id, AT + timedelta(days=1))
    ]
    registration = mapper.to_stored_event(registered).state  # type: ignore[arg-type]
    others_monday = mapper.to_stored_event(visit_events(other.id)[0]).state  # type: ignore[arg-type]

    for visit in monday + tuesday:
        assert key_id_links(registration, visit) == set()
    for visit in monday:
        assert all(key_id_links(visit, later) == set() for later in tuesday)
    # What one person's visits of a day share is what everyone's visits that day share.
    day_key_id = others_monday[2:18]
    for first, second in itertools.combinations(monday, 2):
        assert key_id_links(first, second) == {day_key_id}


def test_erasure_forgets_the_visits_of_every_day_though_no_key_id_names_the_visitor(
    mapper: ScopedCipherMapper, keys: KeyStore
) -> None:
    visitor, [registered] = visitor_events()
    events = [registered]
    for days in range(3):
        events += visit_events(visitor.id, AT + timedelta(days=days))
    stored = [mapper.to_stored_event(e) for e in events]  # type: ignore[arg-type]

    keys.destroy_visitor(visitor.id)

    assert all(isinstance(mapper.to_domain_event(s), Forgotten) for s in stored)


def test_visits_stored_with_every_key_id_in_clear_are_still_read_and_erased(
    mapper: ScopedCipherMapper, keys: KeyStore
) -> None:
    visitor, _ = visitor_events()
    checked_in = visit_events(visitor.id)[0]
    scopes = [f"visitor:{visitor.id}", f"day:{AT.date().isoformat()}"]  # the order they had
    old = stored_with_every_key_id_in_clear(mapper, keys, checked_in, scopes)

    assert old.state[2:18] == keys.key_id(scopes[0])  # the visitor's key id, in clear
    assert vars(mapper.to_domain_event(old)) == vars(checked_in)
    keys.destroy_visitor(visitor.id)
    assert isinstance(mapper.to_domain_event(old), Forgotten)


def test_a_flipped_key_id_of_an_erased_visitors_event_is_refused_too(
    mapper: ScopedCipherMapper, keys: KeyStore
) -> None:
    visitor, [registered] = visitor_events()
    stored = mapper.to_stored_event(registered)  # type: ignore[arg-type]
    keys.destroy_visitor(visitor.id)
    state = bytearray(stored.state)
    state[2] ^= 0x80

    assert isinstance(mapper.to_domain_event(stored), Forgotten)
    with pytest.raises(MapperDeserialisationError, match="never had"):
        mapper.to_domain_event(replace(stored, state=bytes(state)))


def test_a_key_id_the_store_never_had_is_an_error_and_is_not_remembered(
    keys: KeyStore,
) -> None:
    never = bytes(KEY_ID_BYTES)

    for _ in range(2):  # an unknown id is not cached as destroyed
        with pytest.raises(UnknownKeyError):
            keys.key_by_id(never)


def test_a_day_key_destroyed_by_retention_before_its_first_use_reads_as_forgotten(
    keys: KeyStore,
) -> None:
    day_key_id = keys.key_id(f"day:{AT.date().isoformat()}")

    keys.destroy_days_before(AT.date().replace(day=5))

    assert keys.key_by_id(day_key_id) is None


def test_events_survive_a_master_key_rotation(tmp_path: Path) -> None:
    backend = SQLiteKeyBackend(tmp_path / "keys.db")
    old = KeyStore(backend, MasterKeys({1: b"a" * 32}, 1))
    _, [registered] = visitor_events()
    stored = ScopedCipherMapper(old).to_stored_event(registered)  # type: ignore[arg-type]
    both = KeyStore(backend, MasterKeys({2: b"b" * 32, 1: b"a" * 32}, 2))
    rewrapped = both.rotate_master()
    assert rewrapped >= 1
    assert both.versions() == {2: rewrapped}
    # Only the new master key from now on: the log was not rewritten, the keys were.
    fresh = KeyStore(backend, MasterKeys({2: b"b" * 32}, 2))
    back = ScopedCipherMapper(fresh).to_domain_event(stored)
    assert isinstance(back, Visitor.Registered)
    backend.close()


def test_destroying_a_key_drops_the_derived_keys_the_mapper_cached(
    mapper: ScopedCipherMapper, keys: KeyStore
) -> None:
    keys.on_destroy.append(mapper.forget)
    visitor, _ = visitor_events()
    for event in visit_events(visitor.id):
        mapper.to_stored_event(event)  # type: ignore[arg-type]
    cached = len(mapper._aeads)
    keys.destroy_visitor(visitor.id)
    assert len(mapper._aeads) == cached - 1


def test_a_key_another_process_destroyed_unseen_is_refused_once_caches_are_dropped(
    tmp_path: Path, keys: KeyStore, mapper: ScopedCipherMapper
) -> None:
    visitor, events = visitor_events()
    stored = [mapper.to_stored_event(e) for e in events]  # type: ignore[arg-type]
    other = KeyStore(SQLiteKeyBackend(tmp_path / "keys.db"), MasterKeys({1: b"k" * 32}, 1))
    other.destroy_visitor(visitor.id)  # its message to this process is lost
    other.close()
    assert not isinstance(mapper.to_domain_event(stored[0]), Forgotten)  # still cached here
    keys.forget_all()
    mapper.forget_all()
    assert isinstance(mapper.to_domain_event(stored[0]), Forgotten)
    assert mapper._aeads == {}
    with pytest.raises(KeyDestroyedError):
        mapper.to_stored_event(events[0])  # type: ignore[arg-type]


def test_an_event_maps_at_once_only_while_its_keys_are_in_memory(
    keys: KeyStore, mapper: ScopedCipherMapper
) -> None:
    _, events = visitor_events()
    registered = events[0]

    assert not mapper.maps_at_once(registered)  # its key would be made: a write
    mapper.to_stored_event(registered)
    assert mapper.maps_at_once(registered)
    keys.forget_all()
    assert not mapper.maps_at_once(registered)  # it would be read again


def test_loading_a_batchs_keys_lets_every_stored_event_of_it_map_at_once(
    keys: KeyStore, mapper: ScopedCipherMapper
) -> None:
    visitor, registered = visitor_events()
    events = [*registered, *visit_events(visitor.id)]
    for event in events:
        mapper.to_stored_event(event)  # type: ignore[arg-type]  # makes their keys
    keys.forget_all()
    assert not any(mapper.maps_at_once(event) for event in events)

    mapper.load_keys(events)  # type: ignore[arg-type]

    assert all(mapper.maps_at_once(event) for event in events)
    stored = [mapper.to_stored_event(event) for event in events]  # type: ignore[arg-type]
    assert [mapper.to_domain_event(s) for s in stored] == events
