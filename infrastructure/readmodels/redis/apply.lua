-- KEYS: the position and the parked events. The other keys are built from the prefix in
-- ARGV[1], which holds the deployment's hash tag: on a Redis Cluster they share the slot of
-- KEYS, and the call goes to its node (ADR 0012). Times are epoch seconds. One call applies a slice of
-- events: for each, its number of arguments, then the arguments `apply` takes. All events of
-- one call share one prefix.
local function apply(ARGV)
local P = ARGV[1]
local id = tonumber(ARGV[2])
local kind = ARGV[3]
-- Redis keeps only what is hot (issue 21): a visit's record lives here while the visit is
-- open, with its entry in the person's `open` set, its venue's occupancy and the `due` set;
-- every visit, open or closed, is read from the history (infrastructure/history).
-- A record: the pseudonyms of the visit (v), person (p) and venue (u), start (s), planned
-- dwell (d), and the sealed check-in (i).
local function remove_visit(visit)
  local raw = redis.call('GET', P .. 'visit:' .. visit)
  if not raw then return end
  local v = cjson.decode(raw)
  redis.call('SREM', P .. 'open:' .. v.p, visit)
  -- A venue nobody is at keeps no count.
  if redis.call('DECR', P .. 'occ:' .. v.u) <= 0 then redis.call('DEL', P .. 'occ:' .. v.u) end
  redis.call('ZREM', P .. 'due', visit)
  redis.call('DEL', P .. 'visit:' .. visit)
end

local function add_token(token, principal, sealed)
  if token ~= '' then
    redis.call('SET', P .. 'tok:' .. token, sealed)
    redis.call('SADD', P .. 'toks:' .. principal, token)
  end
end

-- A roster entry (rosters.py): the roster's name, the entry's time, its sealed id.
local function list_entry(i)
  if ARGV[i] then redis.call('ZADD', P .. ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
end

-- Everything here arrives as pseudonyms and sealed values; nothing is decrypted here.
if kind == 'principal' then
  add_token(ARGV[5], ARGV[6], ARGV[7])
  list_entry(8)
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
  -- Their open visits (the history forgets the rest, its rows unreadable with their keys).
  local people = {visitor}
  if raw then
    for _, person in ipairs(cjson.decode(raw).people) do people[#people + 1] = person end
  end
  for _, person in ipairs(people) do
    for _, visit in ipairs(redis.call('SMEMBERS', P .. 'open:' .. person)) do
      remove_visit(visit)
    end
    redis.call('DEL', P .. 'open:' .. person)
  end
  redis.call('DEL', P .. 'guardian:' .. visitor, P .. 'visitor:' .. visitor)
  -- What linked them and their dependents to cases (issue 19's accesses).
  redis.call('DEL', P .. 'acase:' .. visitor, P .. 'aperson:' .. visitor)
  if raw then
    for _, person in ipairs(cjson.decode(raw).people) do
      redis.call('DEL', P .. 'acase:' .. person, P .. 'aperson:' .. person)
    end
  end
elseif kind == 'venue' then
  local venue = ARGV[5]
  redis.call('SET', P .. 'venue:' .. venue, ARGV[7])
  -- What each check-in needs of its venue, without the sealed record.
  redis.call('SET', P .. 'dwell:' .. venue, ARGV[8])
  redis.call('ZADD', P .. 'mvenues:' .. ARGV[6], id, venue)
elseif kind == 'edited' then
  -- New details (the code version stays in its own key); later check-ins take the new dwell.
  redis.call('SET', P .. 'venue:' .. ARGV[5], ARGV[6])
  redis.call('SET', P .. 'dwell:' .. ARGV[5], ARGV[7])
  redis.call('PUBLISH', P .. 'changed', 'venue:' .. ARGV[5])
elseif kind == 'rotated' then
  redis.call('SET', P .. 'vcode:' .. ARGV[5], ARGV[6])
  redis.call('PUBLISH', P .. 'changed', 'venue:' .. ARGV[5])
elseif kind == 'agency' then
  redis.call('SET', P .. 'agency:' .. ARGV[5], ARGV[6])
  list_entry(7)
elseif kind == 'checkin' then
  -- ARGV[5] is the visit's record as JSON but for its planned dwell, added here (the
  -- venue's, or the default in ARGV[6]); the pseudonyms the keys need come apart, so the
  -- record is never decoded nor encoded here.
  local visit, person, venue = ARGV[7], ARGV[8], ARGV[9]
  local start = tonumber(ARGV[10])
  local max_dwell = tonumber(redis.call('GET', P .. 'dwell:' .. venue) or ARGV[6])
  local stored = string.sub(ARGV[5], 1, -2) .. ',"d":' .. max_dwell .. '}'
  if redis.call('SET', P .. 'visit:' .. visit, stored, 'NX') then
    redis.call('SADD', P .. 'open:' .. person, visit)
    redis.call('INCR', P .. 'occ:' .. venue)
    redis.call('ZADD', P .. 'due', start + max_dwell, visit)
  end
elseif kind == 'checkout' then
  -- A closed visit is history: nothing of it stays here.
  remove_visit(ARGV[5])
elseif kind == 'listed' then
  list_entry(5)
elseif kind == 'account' then
  -- An officer's or auditor's token rotated (a new one in ARGV[6], ARGV[7]) or the account
  -- closed (ARGV[6] empty): every old token goes, and every worker drops its cached copy.
  local principal = ARGV[5]
  for _, token in ipairs(redis.call('SMEMBERS', P .. 'toks:' .. principal)) do
    redis.call('DEL', P .. 'tok:' .. token)
  end
  redis.call('DEL', P .. 'toks:' .. principal)
  add_token(ARGV[6], principal, ARGV[7])
  redis.call('PUBLISH', P .. 'changed', 'principal:' .. principal)
elseif kind == 'exposure' then
  -- Kept by the history; told to every worker's connected visitors.
  redis.call('PUBLISH', P .. 'exposures', ARGV[5])
-- Notices, risk levels, case reads and merchants' new tokens (issue 19).
elseif kind == 'notice' then
  -- At most 5 a day per venue; what is older than retention reaches nobody, so a bound will do.
  redis.call('RPUSH', P .. 'ntc:' .. ARGV[5], ARGV[6])
  redis.call('LTRIM', P .. 'ntc:' .. ARGV[5], -200, -1)
  redis.call('PUBLISH', P .. 'notices', ARGV[7])
elseif kind == 'risk' then
  redis.call('SET', P .. 'risk:' .. ARGV[5], ARGV[6])
  redis.call('PUBLISH', P .. 'changed', 'risk:' .. ARGV[5])
elseif kind == 'access-case' then
  -- How many index people, then (person, sealed case id) for each, then the cases' roster entry.
  local last = 5 + 2 * tonumber(ARGV[5])
  for i = 6, last, 2 do redis.call('RPUSH', P .. 'acase:' .. ARGV[i], ARGV[i + 1]) end
  list_entry(last + 1)
elseif kind == 'access-read' then
  if ARGV[6] ~= '' then redis.call('RPUSH', P .. 'areads:' .. ARGV[5], ARGV[6]) end
  for i = 7, #ARGV, 2 do redis.call('RPUSH', P .. 'aperson:' .. ARGV[i], ARGV[i + 1]) end
elseif kind == 'retoken' then
  local principal = ARGV[6]
  for _, token in ipairs(redis.call('SMEMBERS', P .. 'toks:' .. principal)) do
    redis.call('DEL', P .. 'tok:' .. token)
  end
  redis.call('DEL', P .. 'toks:' .. principal)
  add_token(ARGV[5], principal, ARGV[7])
  redis.call('PUBLISH', P .. 'changed', 'principal:' .. principal)
end
return 1
end

-- The position is read once, followed through the call, and stored once at its end.
local P = ARGV[2]
local PARKED = KEYS[2]
local pos = tonumber(redis.call('GET', KEYS[1]) or '0')
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
  redis.call('SET', KEYS[1], moved)
  -- Writers of every worker wait for the position to pass their events: tell them it moved.
  redis.call('PUBLISH', P .. 'pos', moved)
end
if parked then return -1 end
return applied
