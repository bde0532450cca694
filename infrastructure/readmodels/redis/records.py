"""How the Redis read models name and seal what they keep (see `records.py` for why).

Key names carry pseudonyms: `visit:<p>`, `open:<p>`, `venue:<p>` and so on, `<p>` the keyed
pseudonym of the id. Values a worker reads back are sealed under their key name. An open visit
keeps beside its sealed check-in what the Lua scripts need to maintain the hot keys: the
pseudonyms of the visit, the person and the venue, and epoch seconds (start, planned dwell); it
leaves Redis when it closes (the history keeps it). So a copy of Redis shows pseudonyms, counts
and times, never an id, a name or a phone.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
import redis

from domain.ports import VisitView
from infrastructure.readmodels.records import Pseudonyms, Seals, refused
from infrastructure.readmodels.redis.cluster import one_slot

T = TypeVar("T")

_pack = msgspec.msgpack.Encoder(uuid_format="bytes")
# The longest maximum dwell a venue may set: an open visit whose deadline is later than this
# after a cutoff began after it (retention, `drop.lua`).
LONGEST_DWELL_S = 24 * 3600.0


class VisitIn(msgspec.Struct, frozen=True, array_like=True):
    """A check-in, sealed in the visit's record when it is made."""

    visit_id: UUID
    visitor_id: UUID
    guardian_id: UUID
    venue_id: UUID
    checked_in_at: datetime
    via: str


class StoredVisit(msgspec.Struct, frozen=True):
    """An open visit's record in Redis (JSON, which the scripts read).

    v, p, u: pseudonyms of the visit, person and venue; s: start, d: planned dwell (epoch
    seconds); i: the sealed check-in (base64).
    """

    v: str
    p: str
    u: str
    s: float
    d: float
    i: str
    # The end of a closed visit, in records written before issue 21 (closed visits stayed):
    # such a record is not believed to be open; `fangxin rebuild` clears them.
    e: float | None = None


_stored = msgspec.json.Decoder(StoredVisit)
_in = msgspec.msgpack.Decoder(VisitIn)


class RedisRecords:
    """The names and sealed values of one deployment's read models (one key prefix)."""

    def __init__(self, prefix: str, pseudonyms: Pseudonyms, seals: Seals) -> None:
        self.prefix = one_slot(prefix)
        self.pseudonyms = pseudonyms
        self._seals = seals

    def name(self, kind: str, ident: UUID) -> str:
        """The full key name of an id's record or index of this kind."""
        return f"{self.prefix}{kind}:{self.pseudonyms.of(ident)}"

    def _local(self, name: str) -> str:
        # The name without the deployment's prefix: sealed records stay the same under
        # another prefix (a rebuild elsewhere), and a prefix is no secret boundary (deployments
        # with separate key stores have separate keys).
        return name[len(self.prefix) :] if name.startswith(self.prefix) else name

    def seal(self, name: str, value: object) -> bytes:
        """A value sealed for this key name."""
        return self._seals.seal(self._local(name), _pack.encode(value))

    def sealed_text(self, name: str, value: object) -> str:
        """`seal` as base64, for a sealed field inside a record the scripts read."""
        return base64.b64encode(self.seal(name, value)).decode()

    def open(
        self, name: str, raw: bytes | str, decoder: msgspec.msgpack.Decoder[T], kind: str
    ) -> T | None:
        """The value sealed under this key name, or None when it is not authentic."""
        sealed = raw if isinstance(raw, bytes) else raw.encode()
        plain = self._seals.open(self._local(name), sealed, kind)
        return None if plain is None else decoder.decode(plain)

    def open_text(
        self, name: str, text: str, decoder: msgspec.msgpack.Decoder[T], kind: str
    ) -> T | None:
        """`open` of a sealed field kept as base64."""
        try:
            sealed = base64.b64decode(text, validate=True)
        except ValueError:
            sealed = b""
        return self.open(name, sealed, decoder, kind)

    def visit_in(self, visit_p: str, visit: VisitIn) -> str:
        """A check-in sealed for the record of the visit of pseudonym `visit_p` (base64)."""
        return self.sealed_text(f"{self.prefix}visit:{visit_p}|in", visit)

    def visit(self, visit_p: str, raw: bytes | str) -> VisitView | None:
        """The open visit kept under `visit:<visit_p>`, or None when its record is not authentic."""
        try:
            stored = _stored.decode(raw)
        except msgspec.DecodeError:
            refused("visit")
            return None
        if stored.e is not None:
            return None
        name = f"{self.prefix}visit:{visit_p}"
        made = self.open_text(f"{name}|in", stored.i, _in, "visit")
        if made is None:
            return None
        return VisitView(*msgspec.structs.astuple(made))


def texts(items: Any) -> list[str]:
    """Redis replies (bytes) as text."""
    return [i.decode() if isinstance(i, bytes) else str(i) for i in items]


def read_visits(client: redis.Redis, records: RedisRecords, replies: Any) -> list[VisitView]:
    """The authentic visits of these pseudonyms (an index's entries), in one round trip."""
    pseudonyms = list(dict.fromkeys(texts(replies)))
    if not pseudonyms:
        return []
    raws = client.mget([f"{records.prefix}visit:{p}" for p in pseudonyms])
    found = (records.visit(p, raw) for p, raw in zip(pseudonyms, raws, strict=True) if raw)
    return [f for f in found if f is not None]
