"""An event's state as MessagePack, decoded back to the types its class declares.

Encoding is one msgspec call over the event's fields (UUIDs as 16 bytes, times as MessagePack
timestamps); decoding goes straight to a dict of typed values through a TypedDict built once
per event class from its dataclass fields, in place of eventsourcing's JSON transcoder and zlib
(docs/adr/0003).

Stored fields only grow (STYLE 8): a field added later with a default is optional when
decoding, and events stored before it get the default; fields the class no longer declares
are ignored.
"""

from __future__ import annotations

import dataclasses
import threading
import typing
from collections.abc import Callable
from typing import Any, TypeVar, cast

import msgspec

# Carried by the stored event's own columns, not by its state.
ENVELOPE = ("originator_id", "originator_version")


class EventCodec:
    """Thread-safe; one per mapper."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
        self._decoders: dict[type, _StateDecoder] = {}
        self._lock = threading.Lock()

    def encode(self, state: dict[str, Any]) -> bytes:
        """The state's fields as a MessagePack map."""
        return self._encoder.encode(state)

    def decode(self, event_class: type, data: bytes) -> dict[str, Any]:
        """The state's fields, each converted to the type `event_class` declares for it."""
        decoder = self._decoders.get(event_class)
        if decoder is None:
            decoder = _StateDecoder(event_class)
            with self._lock:
                self._decoders[event_class] = decoder
        return decoder.decode(data)


class _StateDecoder:
    """Decodes one event class's state; fills in the defaults of fields added later."""

    def __init__(self, event_class: type) -> None:
        hints = typing.get_type_hints(event_class)
        declared: dict[str, Any] = {}
        self._defaults: list[dataclasses.Field[Any]] = []
        for field in dataclasses.fields(event_class):
            if field.name in ENVELOPE:
                continue
            hint = _concrete(hints.get(field.name, Any))
            if _has_default(field):
                self._defaults.append(field)
                hint = typing.NotRequired[hint]
            declared[field.name] = hint
        state: Any = typing.TypedDict(f"{event_class.__qualname__}State", declared)  # type: ignore[misc]
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(state)

    def decode(self, data: bytes) -> dict[str, Any]:
        state: dict[str, Any] = self._decoder.decode(data)
        for field in self._defaults:
            if field.name not in state:
                if field.default is not dataclasses.MISSING:
                    state[field.name] = field.default
                else:
                    state[field.name] = cast(Callable[[], Any], field.default_factory)()
        return state


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return (
        field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    )


def _concrete(hint: Any) -> Any:
    # A type variable (the generic id type of the library's base classes) decodes as is.
    return Any if isinstance(hint, TypeVar) else hint
