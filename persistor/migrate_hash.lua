-- migrate_hash — convert one of the Python service's agg: hashes to integer
-- cents, atomically: the hash is either all dollars (as it was) or all cents.
-- The cents are computed in C from the decimal text (persistor/pyvalue.c);
-- this script only checks that the hash still holds exactly what C read
-- (compare-and-set) and writes.
--
-- KEYS[1] the agg: hash   KEYS[2] plan set (hashes still to convert)
-- KEYS[3] system:tracked_days   KEYS[4] system:hot_version (INCR when the
-- hash is rewritten: whoever caches an answer by that version sees the change)
-- ARGV[1] the hash's day   ARGV[2] n   then n triples: field, old value, cents
--
-- Returns 'done' when the hash is no longer in the plan (converted before,
-- e.g. by a concurrent run), 'gone' when it no longer exists (taken out of
-- the plan), 'changed' when it differs from the n old values (nothing
-- written), 'ok' after HSET of the cents, SADD of the day and SREM from the
-- plan.  Everything is read and checked before the first write.
local n = tonumber(ARGV[2])
if #KEYS ~= 4 or not n or #ARGV ~= 2 + 3 * n or not string.match(ARGV[1], '^%d%d%d%d%-%d%d%-%d%d$') then
    return redis.error_reply('ARGS migrate_hash expects 4 keys, a day, n and n triples')
end
for i = 1, n do
    if not string.match(ARGV[2 + 3 * i], '^%d+$') or #ARGV[2 + 3 * i] > 18 then
        return redis.error_reply('ARGS migrate_hash: ' .. ARGV[2 + 3 * i] .. ' is not cents')
    end
end
local th = redis.call('TYPE', KEYS[1])['ok']
local tp = redis.call('TYPE', KEYS[2])['ok']
local tt = redis.call('TYPE', KEYS[3])['ok']
local tv = redis.call('TYPE', KEYS[4])['ok']
if (th ~= 'none' and th ~= 'hash') or (tp ~= 'none' and tp ~= 'set') or (tt ~= 'none' and tt ~= 'set')
    or (tv ~= 'none' and tv ~= 'string') then
    return redis.error_reply('TYPE migrate_hash: a key has the wrong type')
end
if redis.call('SISMEMBER', KEYS[2], KEYS[1]) == 0 then return 'done' end
if th == 'none' then
    redis.call('SREM', KEYS[2], KEYS[1])
    return 'gone'
end
local now = redis.call('HGETALL', KEYS[1])
if #now ~= 2 * n then return 'changed' end
local old = {}
for i = 1, n do old[ARGV[3 * i]] = ARGV[1 + 3 * i] end
for i = 1, #now, 2 do
    if old[now[i]] ~= now[i + 1] then return 'changed' end
end

local args = {}
for i = 1, n do
    args[#args + 1] = ARGV[3 * i]
    args[#args + 1] = ARGV[2 + 3 * i]
    if #args >= 2000 or i == n then
        redis.call('HSET', KEYS[1], unpack(args))
        args = {}
    end
end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[2], KEYS[1])
redis.call('INCR', KEYS[4])
return 'ok'
