"""An event's state as MessagePack, decoded back to the types its class declares.

Encoding is one msgspec call over the event's fields (UUIDs as 16 bytes, times as MessagePack
timestamps); decoding goes straight to a dict of typed values through a TypedDict built once
per event class from its dataclass fields. This replaces eventsourcing's JSON transcoder and
its zlib compression on the hot path: a check-in's events are a few hundred bytes, where
starting a zlib stream cost more than everything else in the mapper together.
"""

from __future__ import annotations

import dataclasses
import threading
import typing
from typing import Any, TypeVar

import msgspec

# Carried by the stored event's own columns, not by its state.
ENVELOPE = ("originator_id", "originator_version")


class EventCodec:
    """Thread-safe; one per mapper."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
        self._decoders: dict[type, msgspec.msgpack.Decoder[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def encode(self, state: dict[str, Any]) -> bytes:
        """The state's fields as a MessagePack map."""
        return self._encoder.encode(state)

    def decode(self, event_class: type, data: bytes) -> dict[str, Any]:
        """The state's fields, each converted to the type `event_class` declares for it."""
        decoder = self._decoders.get(event_class)
        if decoder is None:
            decoder = msgspec.msgpack.Decoder(state_type(event_class))
            with self._lock:
                self._decoders[event_class] = decoder
        return decoder.decode(data)


def state_type(event_class: type) -> Any:
    """A TypedDict of the event class's state fields and their declared types."""
    hints = typing.get_type_hints(event_class)
    fields = {
        field.name: _concrete(hints.get(field.name, Any))
        for field in dataclasses.fields(event_class)
        if field.name not in ENVELOPE
    }
    return typing.TypedDict(f"{event_class.__qualname__}State", fields)  # type: ignore[operator]


def _concrete(hint: Any) -> Any:
    # A type variable (the generic id type of the library's base classes) decodes as is.
    return Any if isinstance(hint, TypeVar) else hint
