"""The Redis rosters (the production deployment): sorted sets of sealed ids.

A roster is `<kind>` or `<kind>:<owner pseudonym>`, scored by the time each entry was made;
each member is its id sealed under the roster's name, so that no entry can be forged or moved
into another roster, and Redis shows counts and times but no id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import redis

from domain.ports import Listed
from infrastructure.readmodels.redis.records import RedisRecords
from infrastructure.readmodels.rosters import RosterEntry

_id = msgspec.msgpack.Decoder(UUID)


def roster_name(records: RedisRecords, kind: str, owner: UUID | None) -> str:
    """The full key name of a roster."""
    return f"{records.prefix}{kind}" if owner is None else records.name(kind, owner)


def roster_args(records: RedisRecords, entry: RosterEntry) -> list[str | bytes]:
    """(name without prefix, score, sealed member): what the apply script adds to a roster."""
    name = roster_name(records, entry.kind, entry.owner)
    sealed = records.seal(name, entry.entry.id)
    return [name[len(records.prefix) :], repr(entry.entry.at.timestamp()), sealed]


class RedisRoster:
    """Reads rosters; members that fail their seal are refused as if absent."""

    def __init__(self, client: redis.Redis, records: RedisRecords) -> None:
        self._r = client
        self._records = records

    def listed(self, kind: str, owner: UUID | None) -> list[Listed]:
        """Entries of one roster, newest first."""
        name = roster_name(self._records, kind, owner)
        found: list[Listed] = []
        entries: Any = self._r.zrevrange(name, 0, -1, withscores=True)
        for member, score in entries:
            ident = self._records.open(name, member, _id, "roster")
            if ident is not None:
                found.append(Listed(at=datetime.fromtimestamp(score, UTC), id=ident))
        found.sort(key=lambda e: (e.at, e.id), reverse=True)
        return found
