"""The eventsourcing Mapper that encrypts every stored event under its scoped data keys.

Stored state (format 3): a format byte, the number of keys, the id of the first key in clear,
the id of each other key sealed under the first (AES-GCM, a fresh nonce each time), then
AES-256-GCM of the MessagePack payload (`event_codec`) under a key derived from all of them.
Two rows share a visible key id only when they share their first scope: a visit's is its day,
which everyone's visits of that day share, while its visitor's key id, sealed, differs from
row to row, so nothing in the store links a registration to its visits or one visit of a
person to another. Once the day key is shredded (retention), not even the master key links
them. Stores written with every key id in clear (format 2) are still read.

The associated data binds the ciphertext to the event's id, version and topic (and to its key
ids), so a payload moved to another event fails to decrypt. An event whose key was destroyed
(its tombstone is in the key store) is read back as `Forgotten`, never as an error; an event
naming a key the store never had was altered, and is refused like any other altered event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)
from eventsourcing.utils import get_topic, resolve_topic

from domain.forgetting import Forgotten
from infrastructure.eventstore.codec import EventCodec
from infrastructure.keys.crypto import DecryptionError, combine_keys, derive_key, seal, unseal
from infrastructure.keys.keystore import KEY_ID_BYTES, KeyStore, UnknownKeyError

FORMAT_CLEAR_IDS = 2
FORMAT = 3
# A sealed key id: nonce, the id, tag.
SEALED_ID_BYTES = 12 + KEY_ID_BYTES + 16
SYSTEM_SCOPES = ("system",)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 100_000


class ScopedCipherMapper(Mapper[UUID]):
    """Encodes and encrypts events under the keys of their `privacy_scopes`."""

    def __init__(self, keys: KeyStore) -> None:
        # The library's transcoder is never used: states are MessagePack (`EventCodec`).
        super().__init__(transcoder=JSONTranscoder())
        self._codec = EventCodec()
        self._keys = keys
        self._aeads: dict[bytes, AESGCM] = {}
        self._id_sealers: dict[bytes, AESGCM] = {}
        self._lock = threading.Lock()

    def maps_at_once(self, domain_event: DomainEventProtocol[UUID]) -> bool:
        """Whether the event's keys are in memory, so that mapping it does no I/O."""
        scopes: tuple[str, ...] = getattr(domain_event, "privacy_scopes", SYSTEM_SCOPES)
        return all(self._keys.in_memory(scope) for scope in scopes)

    def load_keys(self, domain_events: Iterable[DomainEventProtocol[UUID]]) -> None:
        """Bring the keys of these events into memory in one read of the key store."""
        self._keys.load(
            scope
            for event in domain_events
            for scope in getattr(event, "privacy_scopes", SYSTEM_SCOPES)
        )

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """Encode and encrypt one event."""
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        topic = get_topic(type(domain_event))
        scopes: tuple[str, ...] = getattr(domain_event, "privacy_scopes", SYSTEM_SCOPES)
        id_key_pairs = [self._keys.key_for(scope) for scope in scopes]
        key_ids = b"".join(key_id for key_id, _ in id_key_pairs)
        first_id, first_key = id_key_pairs[0]
        header = bytes([FORMAT, len(id_key_pairs)]) + first_id
        if len(id_key_pairs) > 1:
            sealer = self._id_sealer(first_id, first_key)
            header += b"".join(
                seal(sealer, key_id, _id_context(originator_id, originator_version, topic, i))
                for i, (key_id, _) in enumerate(id_key_pairs[1:], 1)
            )
        aead = self._aead(key_ids, [key for _, key in id_key_pairs])
        context = _context(originator_id, originator_version, topic, header)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=header + seal(aead, self._codec.encode(state), context),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        """Decrypt one event; a destroyed key gives a `Forgotten` event, an unknown one an error."""
        state = stored_event.state
        if len(state) < 2 or state[0] not in (FORMAT, FORMAT_CLEAR_IDS):
            raise MapperDeserialisationError(f"unknown stored format in {stored_event.topic}")
        found = self._keys_of(stored_event)
        if found is None:
            return _forgotten(stored_event)
        key_ids, keys, header_end = found
        aead = self._aead(key_ids, keys)
        originator_id = _uuid(stored_event.originator_id)
        context = _context(
            originator_id, stored_event.originator_version, stored_event.topic, state[:header_end]
        )
        try:
            plain = unseal(aead, state[header_end:], context)
        except DecryptionError:
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version}"
                " fails authentication: it was altered or moved"
            ) from None
        event_class = resolve_topic(stored_event.topic)
        try:
            fields = self._codec.decode(event_class, plain)
        except msgspec.DecodeError as exc:
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version}"
                f" does not decode as {stored_event.topic}: {exc}"
            ) from None
        fields["originator_id"] = originator_id
        fields["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(event_class)
        object.__setattr__(domain_event, "__dict__", fields)
        return cast("DomainEventProtocol[UUID]", domain_event)

    def _keys_of(self, stored_event: StoredEvent) -> tuple[bytes, list[bytes], int] | None:
        """(key ids, keys, end of the header) of a stored event; None when a key of it was
        destroyed. The first key is looked at first: once a day is shredded, so are the
        ids sealed under its key."""
        state = stored_event.state
        count = state[1]
        sealed = state[0] == FORMAT
        header_end = 2 + (
            KEY_ID_BYTES + (count - 1) * SEALED_ID_BYTES if sealed else count * KEY_ID_BYTES
        )
        if count < 1 or len(state) < header_end:
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version}"
                " has a truncated header: it was altered"
            )
        if not sealed:
            key_ids = state[2:header_end]
            ids = [key_ids[i : i + KEY_ID_BYTES] for i in range(0, len(key_ids), KEY_ID_BYTES)]
        else:
            ids = [state[2 : 2 + KEY_ID_BYTES]]
        keys: list[bytes] = []
        for i in range(count):
            if i == len(ids):  # a sealed id, opened with the first key
                ids.append(self._open_id(stored_event, ids[0], keys[0], i))
            key = self._key_by_id(stored_event, ids[i])
            if key is None:
                return None
            keys.append(key)
        return b"".join(ids), keys, header_end

    def _key_by_id(self, stored_event: StoredEvent, key_id: bytes) -> bytes | None:
        try:
            return self._keys.key_by_id(key_id)
        except UnknownKeyError as unknown:
            # Only a destroyed key may make an event forgotten: read as erased, an altered
            # key id would let an edited or forged event pass as one erased by design.
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version}"
                " names a key the key store never had: it was altered"
            ) from unknown

    def _open_id(self, stored_event: StoredEvent, first_id: bytes, first: bytes, i: int) -> bytes:
        start = 2 + KEY_ID_BYTES + (i - 1) * SEALED_ID_BYTES
        sealed = stored_event.state[start : start + SEALED_ID_BYTES]
        originator_id = _uuid(stored_event.originator_id)
        context = _id_context(originator_id, stored_event.originator_version, stored_event.topic, i)
        try:
            return unseal(self._id_sealer(first_id, first), sealed, context)
        except DecryptionError:
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version}"
                " has a sealed key id that fails authentication: it was altered or moved"
            ) from None

    def _id_sealer(self, first_id: bytes, first: bytes) -> AESGCM:
        """The key that seals key ids under the first key of an event (its own, derived)."""
        sealer = self._id_sealers.get(first_id)
        if sealer is None:
            sealer = AESGCM(derive_key(first, b"fangxin-sealed-key-id|" + first_id))
            with self._lock:
                if len(self._id_sealers) >= _CACHE_LIMIT:
                    self._id_sealers.clear()
                self._id_sealers[first_id] = sealer
        return sealer

    def _aead(self, key_ids: bytes, keys: list[bytes]) -> AESGCM:
        aead = self._aeads.get(key_ids)
        if aead is None:
            aead = AESGCM(combine_keys(keys, b"fangxin-event-key|" + key_ids))
            with self._lock:
                if len(self._aeads) >= _CACHE_LIMIT:
                    self._aeads.clear()
                self._aeads[key_ids] = aead
        return aead

    def forget_all(self) -> None:
        """Drop every derived key (they are derived again from the key store on next use)."""
        with self._lock:
            self._aeads.clear()
            self._id_sealers.clear()

    def forget(self, key_ids: list[bytes]) -> None:
        """Drop derived keys built from destroyed keys, so none stays in memory."""
        with self._lock:
            for combined in [ids for ids in self._aeads if _uses_any(ids, key_ids)]:
                del self._aeads[combined]
            for key_id in key_ids:
                self._id_sealers.pop(key_id, None)


def _uses_any(combined: bytes, key_ids: list[bytes]) -> bool:
    parts = {combined[i : i + KEY_ID_BYTES] for i in range(0, len(combined), KEY_ID_BYTES)}
    return not parts.isdisjoint(key_ids)


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


def _context(originator_id: UUID | str, version: int, topic: str, header: bytes) -> bytes:
    originator_bytes = (
        originator_id.bytes if isinstance(originator_id, UUID) else originator_id.encode()
    )
    return b"|".join([originator_bytes, version.to_bytes(8, "big"), topic.encode(), header])


def _id_context(originator_id: UUID | str, version: int, topic: str, index: int) -> bytes:
    return _context(originator_id, version, topic, b"sealed-key-id" + bytes([index]))


def _forgotten(stored_event: StoredEvent) -> Forgotten:
    module, _, qualname = stored_event.topic.partition(":")
    aggregate_qualname = qualname.rsplit(".", 1)[0] if "." in qualname else qualname
    originator_id: Any = stored_event.originator_id
    return Forgotten(
        originator_id=originator_id if isinstance(originator_id, UUID) else UUID(originator_id),
        originator_version=stored_event.originator_version,
        timestamp=_EPOCH,
        original_topic=stored_event.topic,
        aggregate_topic=f"{module}:{aggregate_qualname}",
    )
