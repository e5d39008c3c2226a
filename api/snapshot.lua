#!lua flags=no-writes
-- snapshot — everything /stats needs from Redis, read atomically (api/snapshot.c).
--
-- KEYS[1] set of tracked days        KEYS[2] archive version
-- KEYS[3] archived-through day       KEYS[4] set of pending archive batches
-- KEYS[5] hot version
-- ARGV[1] from day, ARGV[2] to day (YYYY-MM-DD, both included)
-- ARGV[3] agg key prefix, ARGV[4] frozen key prefix, ARGV[5] batch key prefix
-- ARGV[6] name of type 0 (deposit), ARGV[7] name of type 1 (withdrawal)
-- ARGV[8] the partition's tag, appended to every derived key ('' untagged:
--         today's names; common/keys.h)
--
-- Reply, flat so the client parses one array:
--   [1] archive version ('' when unset)  [2] archived-through day ('' when unset)
--   [3] hot version ('' when unset)
--   't', n, day1, ..., dayn              every tracked day (the client's layout hint)
--   then groups:
--   'p', batch, days                     a pending batch and its comma-separated days
--   'x', batch                           a pending batch without its record (corrupt)
--   'h', day, type, n, field1, value1, ..., fieldn, valuen      a hot agg hash in range
--   'f', batch, day, type, n, field1, value1, ...               a frozen hash in range
-- Days compare as strings: YYYY-MM-DD orders like the calendar.  Read-only:
-- nothing to validate before a write, and it may run on a replica.
local from, to = ARGV[1], ARGV[2]
local types = {ARGV[6], ARGV[7]}
local ptag = ARGV[8] or ''
local out = {redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or '', redis.call('GET', KEYS[5]) or ''}
local n = 3

local function put(v)
    n = n + 1
    out[n] = v
end

local function put_hash(tag, batch, key, day, t)
    local h = redis.call('HGETALL', key)
    if #h == 0 then return end
    put(tag)
    if batch then put(batch) end
    put(day)
    put(t)
    put(#h / 2)
    for i = 1, #h do put(h[i]) end
end

local tracked = redis.call('SMEMBERS', KEYS[1])
put('t')
put(#tracked)
for i = 1, #tracked do put(tracked[i]) end

for _, batch in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    local days = redis.call('HGET', ARGV[5] .. batch .. ptag, 'days')
    if not days then
        put('x')
        put(batch)
    else
        put('p')
        put(batch)
        put(days)
        for day in string.gmatch(days, '[^,]+') do
            if day >= from and day <= to then
                for t = 1, 2 do
                    put_hash('f', batch, ARGV[4] .. batch .. ':' .. day .. ':' .. types[t] .. ptag, day, t - 1)
                end
            end
        end
    end
end

for _, day in ipairs(tracked) do
    if day >= from and day <= to then
        for t = 1, 2 do put_hash('h', nil, ARGV[3] .. day .. ':' .. types[t] .. ptag, day, t - 1) end
    end
end
return out
