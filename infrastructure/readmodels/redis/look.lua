-- What check-ins look at, in one round trip: visits by pseudonym (ARGV[2..], '' for none;
-- each comes back, missing ones as nil), then for each person (KEYS: their sets of open
-- visits) how many open visits, then each visit's pseudonym and record.
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
