"""Redis read model of the case reads that concerned each person, each record sealed.

`acase:<person>` lists the cases opened on a person, `areads:<case>` the reads of a case that
concern its index people, `aperson:<person>` the reads that listed or revealed a person (all
names pseudonyms): every entry sealed under its list's name, so none can be forged or moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from uuid import UUID

import msgspec
import redis

from domain.outreach_ports import AccessView
from infrastructure.readmodels.redis.records import RedisRecords

_access = msgspec.msgpack.Decoder(AccessView)
_id = msgspec.msgpack.Decoder(UUID)
T = TypeVar("T")


class RedisAccessIndex:
    """Reads by case and by person, in Redis."""

    def __init__(self, client: redis.Redis, records: RedisRecords) -> None:
        self._r = client
        self._records = records

    def _list(self, name: str, decoder: msgspec.msgpack.Decoder[T]) -> list[T]:
        raws = self._r.lrange(name, 0, -1)
        found = (self._records.open(name, raw, decoder, "access") for raw in raws)
        return [f for f in found if f is not None]

    def of_people(self, people: Sequence[UUID]) -> list[AccessView]:
        """Reads concerning any of these people, oldest first, each once."""
        found: dict[tuple[UUID, int], AccessView] = {}
        for person in people:
            cases = self._list(self._records.name("acase", person), _id)
            for case_id in dict.fromkeys(cases):
                for access in self._list(self._records.name("areads", case_id), _access):
                    if access.case_id == case_id:
                        found[(access.case_id, access.version)] = access
            for access in self._list(self._records.name("aperson", person), _access):
                found[(access.case_id, access.version)] = access
        return sorted(found.values(), key=lambda a: (a.at, a.case_id, a.version))
