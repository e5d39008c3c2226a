-- migrate_plan — record, once, which agg: hashes are the Python service's
-- (persistor migrate).  Only hashes in this plan are ever converted, so a
-- later run never takes txagg's own integer cents for dollars.
--
-- KEYS[1] migration record (hash)   KEYS[2] hashes still to convert (set)
-- ARGV[1] UTC time of the plan   ARGV[2..] the agg: keys found
--
-- The first call writes the set and the record's `planned` and `hashes`
-- fields; once `planned` exists every call returns 0 and writes nothing (two
-- runs at once make one plan).  Returns 1 when this call made the plan.
if #KEYS ~= 2 or #ARGV < 1 or ARGV[1] == '' then
    return redis.error_reply('ARGS migrate_plan expects 2 keys and a time')
end
local t1 = redis.call('TYPE', KEYS[1])['ok']
local t2 = redis.call('TYPE', KEYS[2])['ok']
if (t1 ~= 'none' and t1 ~= 'hash') or (t2 ~= 'none' and t2 ~= 'set') then
    return redis.error_reply('TYPE migrate_plan: ' .. KEYS[1] .. ' or ' .. KEYS[2] .. ' has the wrong type')
end
if redis.call('HEXISTS', KEYS[1], 'planned') == 1 then return 0 end
for i = 2, #ARGV, 1000 do
    redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'planned', ARGV[1], 'hashes', tostring(#ARGV - 1))
return 1
