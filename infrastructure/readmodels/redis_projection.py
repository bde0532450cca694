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
from typing import Any, NamedTuple
from uuid import UUID

import redis
from eventsourcing.domain import DomainEventProtocol

from infrastructure.readmodels.redis_args import EventArgs, epoch
from infrastructure.readmodels.redis_records import RedisRecords

# The Lua side. All keys are built from the prefix in ARGV[1]: one Redis (or one hash slot per
# deployment with a `{tag}` prefix in Redis Cluster). Times are epoch seconds. One call applies
# a slice of events: for each, its number of arguments, then the arguments `apply` takes. All
# events of one call share one prefix.
APPLY_SCRIPT = r"""
local function apply(ARGV)
local P = ARGV[1]
local id = tonumber(ARGV[2])
local kind = ARGV[3]
local DAY = 86400

local function days(first, last)
  return math.floor(first / DAY), math.floor(last / DAY)
end

local function unfile(v)
  local finish = v.e
  if finish == nil then finish = v.s + v.d end
  local d0, d1 = days(v.s, finish)
  for d = d0, d1 do redis.call('ZREM', P .. 'ci:' .. v.u .. ':' .. d, v.v) end
end

-- A visit's record: the pseudonyms of the visit (v), person (p), guardian (g) and venue (u),
-- start (s), planned dwell (d), end (e, once closed), and the sealed check-in and check-out.
local function remove_visit(visit)
  local raw = redis.call('GET', P .. 'visit:' .. visit)
  if not raw then return end
  local v = cjson.decode(raw)
  redis.call('ZREM', P .. 'gvisits:' .. v.g, visit)
  redis.call('ZREM', P .. 'vvisits:' .. v.u, visit)
  redis.call('ZREM', P .. 'pvisits:' .. v.p, visit)
  redis.call('ZREM', P .. 'allvisits', visit)
  redis.call('ZREM', P .. 'due', visit)
  if v.e == nil then
    redis.call('SREM', P .. 'open:' .. v.p, visit)
    redis.call('DECR', P .. 'occ:' .. v.u)
  end
  unfile(v)
  redis.call('DEL', P .. 'visit:' .. visit)
end

local function add_token(token, principal, sealed)
  if token ~= '' then
    redis.call('SET', P .. 'tok:' .. token, sealed)
    redis.call('SADD', P .. 'toks:' .. principal, token)
  end
end

-- Everything here arrives as pseudonyms and sealed values; nothing is decrypted here.
if kind == 'principal' then
  add_token(ARGV[5], ARGV[6], ARGV[7])
elseif kind == 'visitor' then
  local visitor = ARGV[6]
  add_token(ARGV[5], visitor, ARGV[7])
  redis.call('SET', P .. 'visitor:' .. visitor, ARGV[8])
  redis.call('HSET', P .. 'phone:' .. ARGV[9], visitor, ARGV[10])
  -- Then (person, sealed guardian) for the visitor and each dependent.
  for i = 11, #ARGV, 2 do redis.call('SET', P .. 'guardian:' .. ARGV[i], ARGV[i + 1]) end
elseif kind == 'erased' then
  local visitor = ARGV[5]
  redis.call('PUBLISH', P .. 'changed', 'principal:' .. visitor)
  for _, token in ipairs(redis.call('SMEMBERS', P .. 'toks:' .. visitor)) do
    redis.call('DEL', P .. 'tok:' .. token)
  end
  redis.call('DEL', P .. 'toks:' .. visitor)
  local raw = redis.call('GET', P .. 'visitor:' .. visitor)
  if raw then
    local known = cjson.decode(raw)
    redis.call('HDEL', P .. 'phone:' .. known.phone, visitor)
    for _, person in ipairs(known.people) do redis.call('DEL', P .. 'guardian:' .. person) end
  end
  redis.call('DEL', P .. 'guardian:' .. visitor, P .. 'visitor:' .. visitor)
  for _, visit in ipairs(redis.call('ZRANGE', P .. 'gvisits:' .. visitor, 0, -1)) do
    remove_visit(visit)
  end
  redis.call('DEL', P .. 'gvisits:' .. visitor)
elseif kind == 'venue' then
  local venue = ARGV[5]
  redis.call('SET', P .. 'venue:' .. venue, ARGV[7])
  -- What each check-in needs of its venue, without the sealed record.
  redis.call('SET', P .. 'dwell:' .. venue, ARGV[8])
  redis.call('ZADD', P .. 'mvenues:' .. ARGV[6], id, venue)
elseif kind == 'rotated' then
  redis.call('SET', P .. 'vcode:' .. ARGV[5], ARGV[6])
  redis.call('PUBLISH', P .. 'changed', 'venue:' .. ARGV[5])
elseif kind == 'agency' then
  redis.call('SET', P .. 'agency:' .. ARGV[5], ARGV[6])
elseif kind == 'checkin' then
  -- ARGV[5] is the visit's record as JSON but for its planned dwell, added here (the
  -- venue's, or the default in ARGV[6]); the pseudonyms the indexes need come apart, so the
  -- record is never decoded nor encoded here.
  local visit, person, guardian, venue = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
  local start = tonumber(ARGV[11])
  local max_dwell = tonumber(redis.call('GET', P .. 'dwell:' .. venue) or ARGV[6])
  local stored = string.sub(ARGV[5], 1, -2) .. ',"d":' .. max_dwell .. '}'
  if redis.call('SET', P .. 'visit:' .. visit, stored, 'NX') then
    redis.call('ZADD', P .. 'gvisits:' .. guardian, start, visit)
    redis.call('ZADD', P .. 'vvisits:' .. venue, start, visit)
    redis.call('ZADD', P .. 'pvisits:' .. person, start, visit)
    redis.call('ZADD', P .. 'allvisits', start, visit)
    redis.call('SADD', P .. 'open:' .. person, visit)
    redis.call('INCR', P .. 'occ:' .. venue)
    redis.call('ZADD', P .. 'due', start + max_dwell, visit)
    local d0, d1 = days(start, start + max_dwell)
    for d = d0, d1 do
      redis.call('ZADD', P .. 'ci:' .. venue .. ':' .. d, start, visit)
    end
  end
elseif kind == 'checkout' then
  local raw = redis.call('GET', P .. 'visit:' .. ARGV[5])
  if raw then
    local v = cjson.decode(raw)
    if v.e == nil then
      local end_s = math.max(tonumber(ARGV[7]), v.s)
      -- Filed under each day from its start to its planned end; now under each day to its
      -- end: only the days that differ change.
      local d0, planned = days(v.s, v.s + v.d)
      local _, last = days(v.s, end_s)
      for d = last + 1, planned do
        redis.call('ZREM', P .. 'ci:' .. v.u .. ':' .. d, v.v)
      end
      for d = math.max(planned + 1, d0), last do
        redis.call('ZADD', P .. 'ci:' .. v.u .. ':' .. d, v.s, v.v)
      end
      v.o = ARGV[6]
      v.e = end_s
      redis.call('SET', P .. 'visit:' .. v.v, cjson.encode(v))
      redis.call('SREM', P .. 'open:' .. v.p, v.v)
      redis.call('DECR', P .. 'occ:' .. v.u)
      redis.call('ZREM', P .. 'due', v.v)
    end
  end
elseif kind == 'exposure' then
  redis.call('RPUSH', P .. 'exp:' .. ARGV[5], ARGV[6])
  redis.call('PUBLISH', P .. 'exposures', ARGV[7])
end
return 1
end

-- The position is read once, followed through the call, and stored once at its end.
local P = ARGV[2]
local PARKED = P .. 'parked'
local pos = tonumber(redis.call('GET', P .. 'pos') or '0')
local moved = nil

-- Applies a list of events (each: its number of arguments, then the arguments) in order; one
-- already applied changes nothing. A writer applying its own events directly names the
-- position each must follow (the event before it, or the last one before a gap it checked),
-- so that nothing committed before it by another worker is ever skipped: when that position
-- is not reached yet, this event and the rest are parked under it, and applied by whichever
-- call reaches it. Returns how many were applied, and whether some were parked.
local function run(list)
  local applied = 0
  local i = 1
  while i <= #list do
    local n = tonumber(list[i])
    local args = {}
    for k = 1, n do args[k] = list[i + k] end
    local id = tonumber(args[2])
    if id > pos then
      local follows = args[4]
      if follows ~= 'any' and pos < tonumber(follows) then
        local rest = {}
        for k = i, #list do rest[#rest + 1] = list[k] end
        redis.call('HSET', PARKED, follows, cmsgpack.pack(rest))
        return applied, true
      end
      apply(args)
      pos = id
      moved = args[2]
      applied = applied + 1
    end
    i = i + n + 1
  end
  return applied, false
end

local applied, parked = run(ARGV)
-- Parked events whose position is reached now (or passed, if the runner applied them from
-- the log meanwhile), oldest first.
while redis.call('HLEN', PARKED) > 0 do
  local best, best_key = nil, nil
  for _, follows in ipairs(redis.call('HKEYS', PARKED)) do
    local f = tonumber(follows)
    if f <= pos and (best == nil or f < best) then best, best_key = f, follows end
  end
  if best == nil then break end
  local list = cmsgpack.unpack(redis.call('HGET', PARKED, best_key))
  redis.call('HDEL', PARKED, best_key)
  run(list)
end
if moved then
  redis.call('SET', P .. 'pos', moved)
  -- Writers of every worker wait for the position to pass their events: tell them it moved.
  redis.call('PUBLISH', P .. 'pos', moved)
end
if parked then return -1 end
return applied
"""
APPLY_SHA = hashlib.sha1(APPLY_SCRIPT.encode(), usedforsecurity=False).hexdigest()
# Events per script call: a call runs atomically, so Redis serves nobody else meanwhile.
EVENTS_PER_CALL = 200

# Retention: drop visits that began before a cutoff, a slice at a time.
DROP_SCRIPT = r"""
local P = ARGV[1]
local DAY = 86400
local ids = redis.call('ZRANGEBYSCORE', P .. 'allvisits', '-inf', '(' .. ARGV[2], 'LIMIT', 0, 500)
for _, visit in ipairs(ids) do
  local raw = redis.call('GET', P .. 'visit:' .. visit)
  if raw then
    local v = cjson.decode(raw)
    local finish = v.e
    if finish == nil then
      finish = v.s + v.d
      redis.call('SREM', P .. 'open:' .. v.p, visit)
      redis.call('DECR', P .. 'occ:' .. v.u)
    end
    for d = math.floor(v.s / DAY), math.floor(finish / DAY) do
      redis.call('ZREM', P .. 'ci:' .. v.u .. ':' .. d, visit)
    end
    redis.call('ZREM', P .. 'gvisits:' .. v.g, visit)
    redis.call('ZREM', P .. 'vvisits:' .. v.u, visit)
    redis.call('ZREM', P .. 'pvisits:' .. v.p, visit)
    redis.call('ZREM', P .. 'due', visit)
    redis.call('DEL', P .. 'visit:' .. visit)
  end
  redis.call('ZREM', P .. 'allvisits', visit)
end
return #ids
"""


# What check-ins look at, in one round trip: visits by pseudonym (ARGV[2..], '' for none; each
# comes back, missing ones as nil), then for each person (KEYS: their sets of open visits) how
# many open visits, then each visit's pseudonym and record.
LOOK_SCRIPT = r"""
local P = ARGV[1]
local out = {}
for i = 2, #ARGV do
  if ARGV[i] == '' then out[#out + 1] = false
  else out[#out + 1] = redis.call('GET', P .. 'visit:' .. ARGV[i]) end
end
for _, key in ipairs(KEYS) do
  local ids = redis.call('SMEMBERS', key)
  out[#out + 1] = #ids
  for _, visit in ipairs(ids) do
    out[#out + 1] = visit
    out[#out + 1] = redis.call('GET', P .. 'visit:' .. visit)
  end
end
return out
"""
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
        if len(calls) == 1:
            return [self._client.evalsha(APPLY_SHA, 0, *calls[0])]
        pipe = self._client.pipeline(transaction=False)
        for call_args in calls:
            pipe.evalsha(APPLY_SHA, 0, *call_args)
        replies: list[Any] = pipe.execute()
        return replies

    def drop_before(self, cutoff: datetime) -> int:
        """Retention: drop visits that began before the cutoff."""
        dropped = 0
        while True:
            n = int(self._drop(args=[self.prefix, repr(epoch(cutoff))]))
            dropped += n
            if n < 500:
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
