-- apply.lua — commit one pre-aggregated batch of the stream, exactly once
-- (hand-off 2 of DESIGN.md).  Built and called by aggregator/apply.c.
--
-- KEYS[1] stream   KEYS[2] tracked-days set   KEYS[3] virtual clock
-- KEYS[4] dead-letter stream   KEYS[5..] agg:{day}:{type} hashes of the batch
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] greatest ts of the batch or ""
-- ARGV[4] n = number of entry ids  ARGV[5] number of days  ARGV[6] number of
-- dead letters, then: the n ids (ascending); for each KEYS[5..] hash: its
-- number of fields m, then m (method, cents) pairs; the days; and per dead
-- letter four strings (reason, id, raw, detail).
--
-- Order: (1) validate every argument and the type of every key written, (2)
-- check that this consumer still owns every id (XPENDING for the consumer
-- over [first, last] must return exactly the ids, in order), (3) only then
-- write.  A runtime error cannot happen after the first write, so a batch is
-- either applied whole with its XACK or not at all.  A replay of an applied
-- batch (its reply was lost) finds the ids acknowledged and returns "stale".
-- Ids need no syntax check of their own: each must equal an id Redis returns.
--
-- Returns {"ok", acked} or {"stale", owned}; an error reply when the
-- arguments or keys are unusable (nothing written).

local nkeys = #KEYS
local nargs = #ARGV
local CHUNK = 4000 -- unpack() stays far below Lua's C stack limit (LUAI_MAXCSTACK 8000)

local function count(s, min)
    if type(s) ~= 'string' or not string.match(s, '^%d+$') or #s > 9 then return nil end
    local v = tonumber(s)
    if v < min then return nil end
    return v
end

if nkeys < 4 then return redis.error_reply('apply: fewer than 4 keys') end
if nargs < 7 then return redis.error_reply('apply: too few arguments') end
local group, consumer, maxts = ARGV[1], ARGV[2], ARGV[3]
local n, ndays, ndead = count(ARGV[4], 1), count(ARGV[5], 0), count(ARGV[6], 0)
if not n or not ndays or not ndead then return redis.error_reply('apply: bad counts') end
if group == '' or consumer == '' then return redis.error_reply('apply: empty group or consumer') end
if maxts ~= '' and not string.match(maxts, '^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$') then
    return redis.error_reply('apply: bad max ts')
end

-- the increments: one block per agg key
local i = 7 + n
for k = 5, nkeys do
    local m = count(ARGV[i], 1)
    if not m or i + 2 * m > nargs then return redis.error_reply('apply: bad field count for ' .. KEYS[k]) end
    for j = i + 1, i + 2 * m, 2 do
        if ARGV[j] == '' then return redis.error_reply('apply: empty method') end
        -- a batch sum is below 1e16: at most 16 digits, never 0
        if not string.match(ARGV[j + 1], '^[1-9]%d*$') or #ARGV[j + 1] > 16 then
            return redis.error_reply('apply: bad cents')
        end
    end
    i = i + 1 + 2 * m
end
local days_at = i
for j = i, i + ndays - 1 do
    if not string.match(ARGV[j] or '', '^%d%d%d%d%-%d%d%-%d%d$') then return redis.error_reply('apply: bad day') end
end
i = i + ndays
local dead_at = i
if i + 4 * ndead - 1 ~= nargs then return redis.error_reply('apply: argument count does not add up') end
if (ndays > 0) ~= (nkeys > 4) or (maxts ~= '') ~= (nkeys > 4) then
    return redis.error_reply('apply: days, ts and increments disagree')
end

-- every key written holds the right type, and every counter can take its
-- increment.  HMGET (and GET) fail on a wrong type here, before any write.
-- The new value of a counter is computed now: exactly in Lua's doubles while
-- both numbers have at most 15 characters (|sum| < 2e15 < 2^53), so one HSET
-- per hash writes them all; a larger one goes through HINCRBY (an existing
-- value of up to 17 digits leaves HINCRBY far from 2^63).
local function key_type(key, want)
    local t = redis.call('TYPE', key)['ok']
    return t == 'none' or t == want
end
if not key_type(KEYS[2], 'set') then return redis.error_reply('apply: ' .. KEYS[2] .. ' is not a set') end
if ndead > 0 and not key_type(KEYS[4], 'stream') then
    return redis.error_reply('apply: ' .. KEYS[4] .. ' is not a stream')
end
local clock = redis.pcall('GET', KEYS[3])
if type(clock) == 'table' and clock.err then return redis.error_reply('apply: ' .. KEYS[3] .. ' is not a string') end
local plans = {}
i = 7 + n
for k = 5, nkeys do
    local m = tonumber(ARGV[i])
    local set, big = {}, {}
    for c = 0, m - 1, CHUNK do
        local fields = {}
        for g = c + 1, math.min(c + CHUNK, m) do fields[#fields + 1] = ARGV[i + 2 * g - 1] end
        local cur = redis.pcall('HMGET', KEYS[k], unpack(fields))
        if cur.err then return redis.error_reply('apply: ' .. KEYS[k] .. ' is not a hash') end
        for j = 1, #fields do
            local v, inc = cur[j], ARGV[i + 2 * (c + j)]
            if v and (#v > 17 or not (v == '0' or string.match(v, '^%-?[1-9]%d*$'))) then
                return redis.error_reply('apply: ' .. KEYS[k] .. ' ' .. fields[j] .. ' holds ' .. v)
            end
            v = v or '0'
            if #v <= 15 and #inc <= 15 then
                set[#set + 1] = fields[j]
                -- '%d' prints an integral double exactly (Lua 5.1 formats it as a
                -- 64-bit long) and costs a fraction of '%.0f' in Redis's Lua
                set[#set + 1] = string.format('%d', tonumber(v) + tonumber(inc))
            else
                big[#big + 1] = fields[j]
                big[#big + 1] = inc
            end
        end
    end
    plans[k] = {set, big}
    i = i + 1 + 2 * m
end

-- ownership: the consumer's pending entries in [first, last] are exactly the ids
local pend = redis.call('XPENDING', KEYS[1], group, ARGV[7], ARGV[6 + n], n, consumer)
if #pend ~= n then return {'stale', #pend} end
for j = 1, n do
    if pend[j][1] ~= ARGV[6 + j] then return {'stale', j - 1} end
end

-- writes
for k = 5, nkeys do
    local set, big = plans[k][1], plans[k][2]
    for j = 1, #set, CHUNK do -- CHUNK is even: pairs stay whole
        redis.call('HSET', KEYS[k], unpack(set, j, math.min(j + CHUNK - 1, #set)))
    end
    for j = 1, #big, 2 do redis.call('HINCRBY', KEYS[k], big[j], big[j + 1]) end
end
for j = days_at, days_at + ndays - 1, CHUNK do
    redis.call('SADD', KEYS[2], unpack(ARGV, j, math.min(j + CHUNK - 1, days_at + ndays - 1)))
end
if maxts ~= '' and (not clock or clock < maxts) then redis.call('SET', KEYS[3], maxts) end
for j = dead_at, nargs, 4 do
    redis.call('XADD', KEYS[4], '*', 'reason', ARGV[j], 'id', ARGV[j + 1], 'raw', ARGV[j + 2], 'detail', ARGV[j + 3])
end
local acked = 0
for j = 7, 6 + n, CHUNK do
    acked = acked + redis.call('XACK', KEYS[1], group, unpack(ARGV, j, math.min(j + CHUNK - 1, 6 + n)))
end
return {'ok', acked}
