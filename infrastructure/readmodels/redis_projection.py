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
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
import redis
from eventsourcing.domain import DomainEventProtocol

from domain.cases import ExposureNotice
from domain.people import Agency, Auditor, Merchant, Officer, Visitor
from domain.ports import AgencyView, ExposureView
from domain.venues import Venue
from domain.visits import Visit
from infrastructure.readmodels import views

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
  local finish = v.end_s
  if finish == nil or finish == cjson.null then finish = v.start_s + v.max_dwell_s end
  local d0, d1 = days(v.start_s, finish)
  for d = d0, d1 do redis.call('ZREM', P .. 'ci:' .. v.venue_id .. ':' .. d, v.visit_id) end
end

local function remove_visit(visit_id)
  local raw = redis.call('GET', P .. 'visit:' .. visit_id)
  if not raw then return end
  local v = cjson.decode(raw)
  if v.end_s == cjson.null then v.end_s = nil end
  redis.call('ZREM', P .. 'gvisits:' .. v.guardian_id, visit_id)
  redis.call('ZREM', P .. 'vvisits:' .. v.venue_id, visit_id)
  redis.call('ZREM', P .. 'pvisits:' .. v.visitor_id, visit_id)
  redis.call('ZREM', P .. 'allvisits', visit_id)
  redis.call('ZREM', P .. 'due', visit_id)
  if v.end_s == nil then
    redis.call('SREM', P .. 'open:' .. v.visitor_id, visit_id)
    redis.call('DECR', P .. 'occ:' .. v.venue_id)
  end
  unfile(v)
  redis.call('DEL', P .. 'visit:' .. visit_id)
end

local function add_token(hash, principal_id, principal)
  if hash ~= '' then
    redis.call('SET', P .. 'tok:' .. hash, principal)
    redis.call('SADD', P .. 'toks:' .. principal_id, hash)
  end
end

if kind == 'principal' then
  add_token(ARGV[5], ARGV[6], ARGV[7])
elseif kind == 'visitor' then
  local vid, idx = ARGV[6], ARGV[9]
  add_token(ARGV[5], vid, ARGV[7])
  redis.call('SET', P .. 'visitor:' .. vid, ARGV[8])
  redis.call('RPUSH', P .. 'phone:' .. idx, vid)
  redis.call('SET', P .. 'guardian:' .. vid, vid)
  for i = 10, #ARGV do redis.call('SET', P .. 'guardian:' .. ARGV[i], vid) end
elseif kind == 'erased' then
  local vid = ARGV[5]
  redis.call('PUBLISH', P .. 'changed', 'principal:' .. vid)
  for _, hash in ipairs(redis.call('SMEMBERS', P .. 'toks:' .. vid)) do
    redis.call('DEL', P .. 'tok:' .. hash)
  end
  redis.call('DEL', P .. 'toks:' .. vid)
  local raw = redis.call('GET', P .. 'visitor:' .. vid)
  if raw then
    local visitor = cjson.decode(raw)
    redis.call('LREM', P .. 'phone:' .. visitor.phone_index, 0, vid)
    for _, dep in pairs(visitor.dependents) do redis.call('DEL', P .. 'guardian:' .. dep) end
  end
  redis.call('DEL', P .. 'guardian:' .. vid, P .. 'visitor:' .. vid)
  for _, visit_id in ipairs(redis.call('ZRANGE', P .. 'gvisits:' .. vid, 0, -1)) do
    remove_visit(visit_id)
  end
  redis.call('DEL', P .. 'gvisits:' .. vid)
elseif kind == 'venue' then
  local venue = cjson.decode(ARGV[5])
  redis.call('SET', P .. 'venue:' .. venue.venue_id, ARGV[5])
  -- What each check-in needs of its venue, without decoding the venue.
  redis.call('SET', P .. 'dwell:' .. venue.venue_id, venue.max_dwell_minutes * 60)
  redis.call('ZADD', P .. 'mvenues:' .. venue.merchant_id, id, venue.venue_id)
elseif kind == 'rotated' then
  local raw = redis.call('GET', P .. 'venue:' .. ARGV[5])
  if raw then
    local venue = cjson.decode(raw)
    venue.code_version = tonumber(ARGV[6])
    redis.call('SET', P .. 'venue:' .. ARGV[5], cjson.encode(venue))
    redis.call('PUBLISH', P .. 'changed', 'venue:' .. ARGV[5])
  end
elseif kind == 'agency' then
  redis.call('SET', P .. 'agency:' .. ARGV[5], ARGV[6])
elseif kind == 'checkin' then
  -- ARGV[5] is the stored visit as JSON but for its last field, max_dwell_s, added here; the
  -- fields the indexes need come apart, so the visit is never decoded nor encoded here.
  local v = {visit_id = ARGV[7], visitor_id = ARGV[8], guardian_id = ARGV[9],
             venue_id = ARGV[10], start_s = tonumber(ARGV[11])}
  local max_dwell = tonumber(redis.call('GET', P .. 'dwell:' .. v.venue_id))
  if max_dwell == nil then
    local venue_raw = redis.call('GET', P .. 'venue:' .. v.venue_id)
    if venue_raw then max_dwell = cjson.decode(venue_raw).max_dwell_minutes * 60
    else max_dwell = tonumber(ARGV[6]) end
  end
  local stored = string.sub(ARGV[5], 1, -2) .. ',"max_dwell_s":' .. max_dwell .. '}'
  if redis.call('SET', P .. 'visit:' .. v.visit_id, stored, 'NX') then
    redis.call('ZADD', P .. 'gvisits:' .. v.guardian_id, v.start_s, v.visit_id)
    redis.call('ZADD', P .. 'vvisits:' .. v.venue_id, v.start_s, v.visit_id)
    redis.call('ZADD', P .. 'pvisits:' .. v.visitor_id, v.start_s, v.visit_id)
    redis.call('ZADD', P .. 'allvisits', v.start_s, v.visit_id)
    redis.call('SADD', P .. 'open:' .. v.visitor_id, v.visit_id)
    redis.call('INCR', P .. 'occ:' .. v.venue_id)
    redis.call('ZADD', P .. 'due', v.start_s + max_dwell, v.visit_id)
    local d0, d1 = days(v.start_s, v.start_s + max_dwell)
    for d = d0, d1 do
      redis.call('ZADD', P .. 'ci:' .. v.venue_id .. ':' .. d, v.start_s, v.visit_id)
    end
  end
elseif kind == 'checkout' then
  local raw = redis.call('GET', P .. 'visit:' .. ARGV[5])
  if raw then
    local v = cjson.decode(raw)
    if v.checked_out_at == cjson.null or v.checked_out_at == nil then
      local end_s = math.max(tonumber(ARGV[7]), v.start_s)
      -- Filed under each day from its start to its planned end; now under each day to its
      -- end: only the days that differ change.
      local d0, planned = days(v.start_s, v.start_s + v.max_dwell_s)
      local _, last = days(v.start_s, end_s)
      for d = last + 1, planned do
        redis.call('ZREM', P .. 'ci:' .. v.venue_id .. ':' .. d, v.visit_id)
      end
      for d = math.max(planned + 1, d0), last do
        redis.call('ZADD', P .. 'ci:' .. v.venue_id .. ':' .. d, v.start_s, v.visit_id)
      end
      v.checked_out_at = ARGV[6]
      v.checkout_reason = ARGV[8]
      v.end_s = end_s
      redis.call('SET', P .. 'visit:' .. v.visit_id, cjson.encode(v))
      redis.call('SREM', P .. 'open:' .. v.visitor_id, v.visit_id)
      redis.call('DECR', P .. 'occ:' .. v.venue_id)
      redis.call('ZREM', P .. 'due', v.visit_id)
    end
  end
elseif kind == 'exposure' then
  local e = cjson.decode(ARGV[5])
  redis.call('RPUSH', P .. 'exp:' .. e.venue_id, ARGV[5])
  redis.call('PUBLISH', P .. 'exposures', ARGV[5])
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
for _, visit_id in ipairs(ids) do
  local raw = redis.call('GET', P .. 'visit:' .. visit_id)
  if raw then
    local v = cjson.decode(raw)
    local finish = v.end_s
    if finish == cjson.null or finish == nil then
      finish = v.start_s + v.max_dwell_s
      redis.call('SREM', P .. 'open:' .. v.visitor_id, visit_id)
      redis.call('DECR', P .. 'occ:' .. v.venue_id)
    end
    for d = math.floor(v.start_s / DAY), math.floor(finish / DAY) do
      redis.call('ZREM', P .. 'ci:' .. v.venue_id .. ':' .. d, visit_id)
    end
    redis.call('ZREM', P .. 'gvisits:' .. v.guardian_id, visit_id)
    redis.call('ZREM', P .. 'vvisits:' .. v.venue_id, visit_id)
    redis.call('ZREM', P .. 'pvisits:' .. v.visitor_id, visit_id)
    redis.call('ZREM', P .. 'due', visit_id)
    redis.call('DEL', P .. 'visit:' .. visit_id)
  end
  redis.call('ZREM', P .. 'allvisits', visit_id)
end
return #ids
"""


# What check-ins look at, in one round trip: visits by id (ARGV[2..], '' for none; each comes
# back, missing ones as nil), then for each person (KEYS: their sets of open visits) how many
# open visits, then those visits.
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
  for _, visit_id in ipairs(ids) do out[#out + 1] = redis.call('GET', P .. 'visit:' .. visit_id) end
end
return out
"""
LOOK_SHA = hashlib.sha1(LOOK_SCRIPT.encode(), usedforsecurity=False).hexdigest()


class NewVisit(msgspec.Struct, frozen=True):
    """A visit just checked in, as the apply script receives it: the script appends the
    venue's `max_dwell_s`, which makes it a `StoredVisit`."""

    visit_id: UUID
    visitor_id: UUID
    guardian_id: UUID
    venue_id: UUID
    checked_in_at: datetime
    via: str
    start_s: float


class StoredVisit(NewVisit, frozen=True):
    """A visit as kept in Redis: the VisitView fields plus epoch seconds for the indexes."""

    max_dwell_s: float = 0.0
    checked_out_at: datetime | None = None
    checkout_reason: str | None = None
    end_s: float | None = None


def epoch(at: datetime) -> float:
    """Seconds since the epoch."""
    return at.timestamp()


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def encode_event(event: DomainEventProtocol[UUID]) -> list[str]:
    """The script arguments after (prefix, id) for one event; ['skip'] for events of no concern."""
    e: Any = event
    if isinstance(event, Visit.CheckedIn):
        start_s = epoch(e.at)
        visit = NewVisit(
            visit_id=e.originator_id,
            visitor_id=e.visitor_id,
            guardian_id=e.guardian_id,
            venue_id=e.venue_id,
            checked_in_at=e.at,
            via=e.via,
            start_s=start_s,
        )
        ids = (e.originator_id, e.visitor_id, e.guardian_id, e.venue_id)
        # The script adds the venue's max_dwell_s to the JSON, between these parts.
        return ["checkin", _json(visit), *(str(i) for i in ids), repr(start_s)]
    if isinstance(event, Visit.CheckedOut):
        return [
            "checkout",
            str(e.originator_id),
            _json(e.at).strip('"'),
            repr(epoch(e.at)),
            e.reason,
        ]
    if isinstance(event, Visitor.Registered):
        return [
            "visitor",
            e.token_hash,
            str(e.originator_id),
            _json(views.principal(e)),
            _json(views.visitor_view(e)),
            e.phone_index,
            *(str(d) for d in e.dependent_ids),
        ]
    if isinstance(event, Visitor.Erased):
        return ["erased", str(e.originator_id)]
    if isinstance(event, Merchant.Registered | Officer.Registered | Auditor.Registered):
        return ["principal", e.token_hash, str(e.originator_id), _json(views.principal(e))]
    if isinstance(event, Venue.Registered):
        return ["venue", _json(views.venue_view(e))]
    if isinstance(event, Venue.CodeRotated):
        return ["rotated", str(e.originator_id), str(e.key_version)]
    if isinstance(event, Agency.Registered):
        agency = AgencyView(
            agency_id=e.originator_id, name=e.name, jurisdiction=list(e.jurisdiction)
        )
        return ["agency", str(e.originator_id), _json(agency)]
    if isinstance(event, ExposureNotice.Declared):
        exposure = ExposureView(
            exposure_id=e.originator_id,
            venue_id=e.venue_id,
            start=e.start,
            end=e.end,
            declared_at=e.declared_at,
        )
        return ["exposure", _json(exposure)]
    return ["skip"]


class Encoded(NamedTuple):
    """Events ready for the apply script: the first and last notification ids, the calls."""

    first: int
    last: int
    calls: list[list[str | int]]


class RedisProjector:
    """Applies events to the Redis read models, exactly once, in pipelined batches."""

    def __init__(self, client: redis.Redis, prefix: str, default_max_dwell_minutes: int) -> None:
        self._client = client
        self.prefix = prefix
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
        calls: list[list[str | int]] = []
        previous = "any"
        for start in range(0, len(events), EVENTS_PER_CALL):
            call_args: list[str | int] = []
            for notification_id, event in events[start : start + EVENTS_PER_CALL]:
                args = encode_event(event)
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

    def _run(self, calls: list[list[str | int]]) -> list[Any]:
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
