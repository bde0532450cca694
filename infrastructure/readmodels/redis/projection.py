"""The Redis projection: each event becomes one atomic Lua call that also moves the position.

The script compares the event's notification id with the tracking position stored in Redis and
applies the event only when it is newer, then stores the new position, all in one atomic step:
an event is applied exactly once, whatever crashes and restarts happen between calls. Calls are
pipelined in batches, so a batch costs one round trip; each call that moves the position
publishes it (channel `pos`), so that waiting writers need not poll.

Each worker projects its own batches right after committing them, and batches of two workers
may reach Redis out of log order. A batch whose predecessor is not applied yet is parked in
Redis (hash `parked`, keyed by the position it follows) and applied by the very call that
applies its predecessor: no worker has to wait for another's announcement and send it again.

The scripts see only pseudonyms and sealed records (`redis_args.py` makes them): they maintain
the indexes without ever learning an id, and cannot make a record a worker would accept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Any, NamedTuple
from uuid import UUID

import redis
import redis.cluster
from eventsourcing.domain import DomainEventProtocol

from infrastructure.readmodels.redis.args import EventArgs, epoch
from infrastructure.readmodels.redis.records import LONGEST_DWELL_S, RedisRecords


def _script(name: str) -> str:
    """A Lua script shipped beside this module (package data)."""
    return (resources.files("infrastructure.readmodels.redis") / name).read_text()


# The Lua side; each script's file says what it takes.
APPLY_SCRIPT = _script("apply.lua")
APPLY_SHA = hashlib.sha1(APPLY_SCRIPT.encode(), usedforsecurity=False).hexdigest()
# Events per script call: a call runs atomically, so Redis serves nobody else meanwhile.
EVENTS_PER_CALL = 200

# Retention: drop open visits that began before a cutoff, a slice at a time.
DROP_SCRIPT = _script("drop.lua")
DROP_SLICE = 500


LOOK_SCRIPT = _script("look.lua")
LOOK_SHA = hashlib.sha1(LOOK_SCRIPT.encode(), usedforsecurity=False).hexdigest()


class Encoded(NamedTuple):
    """Events ready for the apply script: the first and last notification ids, the calls."""

    first: int
    last: int
    calls: list[list[str | int | bytes]]


class RedisProjector:
    """Applies events to the Redis read models, exactly once, in pipelined batches."""

    def __init__(
        self, client: redis.Redis, records: RedisRecords, default_max_dwell_minutes: int
    ) -> None:
        self._client = client
        self.prefix = records.prefix
        # The keys every APPLY call declares: its position and its parked events.
        self._anchors = (self.prefix + "pos", self.prefix + "parked")
        self._cluster = isinstance(client, redis.cluster.RedisCluster)
        self._args = EventArgs(records)
        self._default_dwell = str(default_max_dwell_minutes * 60)
        self._drop = client.register_script(DROP_SCRIPT)

    def position(self) -> int:
        """The last notification id applied."""
        raw = self._client.get(self.prefix + "pos")
        return int(raw) if raw else 0

    def apply_batch(
        self, events: Sequence[tuple[int, DomainEventProtocol[UUID]]], after: int | None = None
    ) -> int:
        """Apply events in log order in one round trip; returns how many were new.

        With `after`, the events form a chain that begins at that position: each is applied
        only once the position has reached the one before it (the first: `after`). What cannot
        be applied yet is parked in Redis and applied by the call that reaches its position;
        then this returns -1 (an earlier event, another worker's, is missing still).
        """
        if not events:
            return 0
        return self.apply_encoded(self.encode(events, chained=after is not None), after)

    def encode(
        self, events: Sequence[tuple[int, DomainEventProtocol[UUID]]], *, chained: bool
    ) -> Encoded:
        """The script calls for events in log order (each naming the one it follows if chained).

        A batch that must be sent again (after a gap check) is encoded once.
        """
        calls: list[list[str | int | bytes]] = []
        previous = "any"
        for start in range(0, len(events), EVENTS_PER_CALL):
            call_args: list[str | int | bytes] = []
            for notification_id, event in events[start : start + EVENTS_PER_CALL]:
                args = self._args.of(event)
                if args[0] == "checkin":
                    args.insert(2, self._default_dwell)
                call_args += [len(args) + 3, self.prefix, notification_id, args[0], previous]
                call_args += args[1:]
                if chained:
                    previous = str(notification_id)
            calls.append(call_args)
        return Encoded(first=events[0][0], last=events[-1][0], calls=calls)

    def apply_encoded(self, encoded: Encoded, after: int | None = None) -> int:
        """`apply_batch` of encoded events; with `after`, the chain begins at that position."""
        if not encoded.calls:
            return 0
        # The first event's `follows` argument (see `encode`).
        encoded.calls[0][4] = "any" if after is None else str(after)
        try:
            replies = self._run(encoded.calls)
        except redis.exceptions.NoScriptError:  # Redis restarted empty: load it, go again
            self._client.script_load(APPLY_SCRIPT)
            replies = self._run(encoded.calls)
        results = [int(r) for r in replies]
        if -1 in results:
            return -1
        return sum(results)

    def _run(self, calls: list[list[str | int | bytes]]) -> list[Any]:
        # EVALSHA itself: redis-py's script objects would first ask whether the script
        # exists, one more round trip per batch. Most batches are one call: no pipeline.
        # redis-py's cluster pipelines refuse EVALSHA: there the calls go one by one.
        if len(calls) == 1 or self._cluster:
            return [self._client.evalsha(APPLY_SHA, 2, *self._anchors, *c) for c in calls]
        pipe = self._client.pipeline(transaction=False)
        for call_args in calls:
            pipe.evalsha(APPLY_SHA, 2, *self._anchors, *call_args)
        replies: list[Any] = pipe.execute()
        return replies

    def drop_before(self, cutoff: datetime) -> int:
        """Retention: drop the open visits that began before the cutoff (closed ones are not
        kept here); returns how many went."""
        dropped, kept = 0, 0
        # Only a visit whose deadline comes before this can have begun before the cutoff.
        latest = repr(epoch(cutoff) + LONGEST_DWELL_S + 1)
        while True:
            args: list[str | int] = [self.prefix, repr(epoch(cutoff)), latest, kept]
            went, seen = (int(n) for n in self._drop(keys=[self.prefix + "due"], args=args))
            dropped += went
            kept += seen - went
            if seen < DROP_SLICE:
                return dropped

    def clear(self) -> int:
        """Delete every key of this deployment's read models (before a rebuild)."""
        deleted = 0
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(self._client.unlink(*batch))
                batch = []
        if batch:
            deleted += int(self._client.unlink(*batch))
        return deleted
