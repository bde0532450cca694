-- Retention: drop visits that began before a cutoff (ARGV[2]), a slice at a time. KEYS[1]:
-- every visit by start; the other keys share its hash tag (prefix ARGV[1], ADR 0012).
local P = ARGV[1]
local DAY = 86400
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, 500)
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
  redis.call('ZREM', KEYS[1], visit)
end
return #ids
