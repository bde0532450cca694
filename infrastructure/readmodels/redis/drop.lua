-- Retention: drop the open visits that began before a cutoff (ARGV[2]), a slice at a time.
-- KEYS[1]: the open visits by deadline (`due`); an open visit began before the cutoff only if
-- its deadline is before ARGV[3] (the cutoff plus the longest dwell). ARGV[4]: how many of
-- that range to pass over (kept by earlier slices). The other keys share its hash tag (prefix
-- ARGV[1], ADR 0012). Closed visits are not here: the history drops them.
-- Returns {dropped, looked at}.
local P = ARGV[1]
local cutoff = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3], 'LIMIT', ARGV[4], 500)
local dropped = 0
for _, visit in ipairs(ids) do
  local raw = redis.call('GET', P .. 'visit:' .. visit)
  if not raw then
    redis.call('ZREM', KEYS[1], visit)
    dropped = dropped + 1
  else
    local v = cjson.decode(raw)
    if v.s < cutoff then
      redis.call('SREM', P .. 'open:' .. v.p, visit)
      if redis.call('DECR', P .. 'occ:' .. v.u) <= 0 then redis.call('DEL', P .. 'occ:' .. v.u) end
      redis.call('ZREM', KEYS[1], visit)
      redis.call('DEL', P .. 'visit:' .. visit)
      dropped = dropped + 1
    end
  end
end
return {dropped, #ids}
