-- apply.lua — commit one pre-aggregated batch of the stream, exactly once
-- (hand-off 2, docs/CONTRACTS.md "Exactly once").  Built and called by
-- aggregator/apply.c.
--
-- KEYS[1] stream   KEYS[2] tracked-days set   KEYS[3] virtual clock
-- KEYS[4] dead-letter stream   KEYS[5] hot version (INCR when any hash is
-- written: the api's answers for hot days stay valid while it is unchanged)
-- KEYS[6..] agg:{day}:{type} hashes of the batch
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] greatest ts of the batch or ""
-- ARGV[4] n = number of entries  ARGV[5] number of days  ARGV[6] number of
-- dead letters  ARGV[7] the ownership form: "ids" or "all" (see below); then:
-- in the "ids" form the n ids (ascending); for each KEYS[6..] hash: its number
-- of fields m, then m (method, cents) pairs; the days; and per dead letter
-- four strings (reason, id, raw, detail).
--
-- Order: (1) validate every argument and read every key written (HMGET,
-- GET, TYPE: a wrong type fails here), computing the new counter values;
-- (2) check that this consumer still owns every id; (3) only then write.  A
-- runtime error cannot happen after the first write, so a batch is either
-- applied whole with its XACK or not at all.  A replay of an applied batch
-- (its reply was lost) finds the ids acknowledged and returns "stale".
--
-- Ownership (XACK does not check it; an entry XAUTOCLAIMed by another
-- replica would otherwise be counted twice), two forms:
--   "ids"  XPENDING for the consumer over [first, last] must return exactly
--          the ids, in order; then XACK of the ids.  Any batch: recovery
--          pages, claims, the parts of a refused batch.
--   "all"  the batch is every entry the consumer has pending: the
--          consumer's count in the XPENDING summary must be n; then
--          XGROUP DELCONSUMER acknowledges them all at once (it removes
--          the consumer's entries from the group's pending list; the next
--          XREADGROUP creates the consumer again).  Entries join a
--          consumer's pending list only through its own reads and claims,
--          and leave it only by an acknowledgement or another consumer's
--          claim, so a caller that knows everything it holds — the pump
--          holds exactly one batch when it applies one, and starts from a
--          recovery after any error or reconnect — learns from "count = n"
--          that nothing was taken.  No id crosses into Lua: O(consumers)
--          instead of O(n) values, about a third of Redis's cost per row.
-- Ids need no syntax check of their own: each must equal an id Redis
-- returned (XPENDING in the "ids" form) before XACK sees it.
--
-- Returns {"ok", acked} or {"stale", owned}; otherwise an error reply and
-- nothing written:
--   "REFUSED <key> <field>: <why>"  one counter cannot take its increment (the
--       key is not a hash, the stored value is not an int64, or the sum would
--       pass INT64_MAX).  Retrying cannot cure it: the caller isolates the
--       entries behind it (aggregator/consumer.c, "Refused batches").
--   anything else  the arguments or a system key (tracked set, clock,
--       dead-letter stream) are unusable: retried, never isolated.
--
-- Integers are exact: Lua numbers are doubles, so while both numbers have at
-- most 15 characters (|sum| < 2e15 < 2^53) they are added as doubles; longer
-- ones as two exact parts (hi = all but the last 9 digits, lo = the last 9),
-- with the INT64_MAX check done on the parts, never on a rounded double.

local nkeys = #KEYS
local nargs = #ARGV
local CHUNK = 4000 -- unpack() stays far below Lua's C stack limit (LUAI_MAXCSTACK 8000)
local E9 = 1000000000
local MAX_HI, MAX_LO = 9223372036, 854775807 -- INT64_MAX = MAX_HI * E9 + MAX_LO
local match, sub, format, tonumber = string.match, string.sub, string.format, tonumber

-- A decimal string of 1-19 digits → (hi, lo), both exact in a double; nil
-- when the value is beyond INT64_MAX.
local function split(s)
    local hi = #s > 9 and tonumber(sub(s, 1, -10)) or 0
    local lo = tonumber(sub(s, -9))
    if hi > MAX_HI or (hi == MAX_HI and lo > MAX_LO) then return nil end
    return hi, lo
end

local function count(s, min)
    if type(s) ~= 'string' or not match(s, '^%d+$') or #s > 9 then return nil end
    local v = tonumber(s)
    if v < min then return nil end
    return v
end

if nkeys < 5 then return redis.error_reply('apply: fewer than 5 keys') end
if nargs < 8 then return redis.error_reply('apply: too few arguments') end
local group, consumer, maxts = ARGV[1], ARGV[2], ARGV[3]
local n, ndays, ndead = count(ARGV[4], 1), count(ARGV[5], 0), count(ARGV[6], 0)
if not n or not ndays or not ndead then return redis.error_reply('apply: bad counts') end
local all = ARGV[7] == 'all'
if not all and ARGV[7] ~= 'ids' then return redis.error_reply('apply: bad ownership form') end
if group == '' or consumer == '' then return redis.error_reply('apply: empty group or consumer') end
if maxts ~= '' and not match(maxts, '^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$') then
    return redis.error_reply('apply: bad max ts')
end
local first = 8 -- ARGV index of the first id
local nid = all and 0 or n -- ids passed (none in the "all" form)

-- The system keys hold the right type (HMGET and GET below fail on a wrong one).
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

-- One pass over the hashes: validate each block, read its counters (HMGET),
-- compute every new value.  A cell's increment is a batch sum: positive and
-- below 1e16 (BATCH_SIZE <= 100,000 entries of <= 1e11 cents); at most 18
-- digits are accepted, which keeps it below INT64_MAX without a split.
local function refused(key, field, why)
    return redis.error_reply('REFUSED ' .. key .. ' ' .. field .. ': ' .. why)
end
local plans = {}
local i = first + nid
for k = 6, nkeys do
    local m = count(ARGV[i], 1)
    if not m or i + 2 * m > nargs then return redis.error_reply('apply: bad field count for ' .. KEYS[k]) end
    local set, big = {}, {}
    for c = 0, m - 1, CHUNK do
        local fields = {}
        for g = c + 1, math.min(c + CHUNK, m) do
            local f, inc = ARGV[i + 2 * g - 1], ARGV[i + 2 * g]
            if f == '' then return redis.error_reply('apply: empty method') end
            if #inc > 18 or not match(inc, '^[1-9]%d*$') then return redis.error_reply('apply: bad cents') end
            fields[#fields + 1] = f
        end
        local cur = redis.pcall('HMGET', KEYS[k], unpack(fields))
        if cur.err then return refused(KEYS[k], fields[1], 'the key is not a hash') end
        for j = 1, #fields do
            local v, inc = cur[j], ARGV[i + 2 * (c + j)]
            local nv
            if not v then
                nv = inc -- a new counter: the sum itself
            elseif #v <= 15 and #inc <= 15 and (v == '0' or match(v, '^%-?[1-9]%d*$')) then
                -- '%d' prints an integral double exactly (Lua 5.1 formats it as a
                -- 64-bit long) and costs a fraction of '%.0f' in Redis's Lua
                nv = format('%d', tonumber(v) + tonumber(inc))
            elseif match(v, '^[1-9]%d*$') and #v <= 19 then
                local vhi, vlo = split(v)
                if not vhi then return refused(KEYS[k], fields[j], 'holds ' .. v .. ', not an int64') end
                local ihi, ilo = split(inc)
                local hi, lo = vhi + ihi, vlo + ilo
                if lo >= E9 then hi, lo = hi + 1, lo - E9 end
                if hi > MAX_HI or (hi == MAX_HI and lo > MAX_LO) then
                    return refused(KEYS[k], fields[j], v .. ' + ' .. inc .. ' would pass 9223372036854775807')
                end
                nv = hi > 0 and format('%d%09d', hi, lo) or format('%d', lo)
            elseif match(v, '^%-[1-9]%d*$') and (#v < 20 or (#v == 20 and sub(v, 2) <= '9223372036854775808')) then
                -- negative (txagg never writes one): HINCRBY, which cannot
                -- overflow adding a positive int64 to it
                big[#big + 1] = fields[j]
                big[#big + 1] = inc
            else
                return refused(KEYS[k], fields[j], 'holds ' .. v .. ', not an int64')
            end
            if nv then
                set[#set + 1] = fields[j]
                set[#set + 1] = nv
            end
        end
    end
    plans[k] = {set, big}
    i = i + 1 + 2 * m
end
local days_at = i
for j = i, i + ndays - 1 do
    if not match(ARGV[j] or '', '^%d%d%d%d%-%d%d%-%d%d$') then return redis.error_reply('apply: bad day') end
end
i = i + ndays
local dead_at = i
if i + 4 * ndead - 1 ~= nargs then return redis.error_reply('apply: argument count does not add up') end
if (ndays > 0) ~= (nkeys > 5) or (maxts ~= '') ~= (nkeys > 5) then
    return redis.error_reply('apply: days, ts and increments disagree')
end

-- ownership
if all then
    local summary = redis.call('XPENDING', KEYS[1], group)
    local mine = 0
    for _, c in ipairs(summary[4] or {}) do
        if c[1] == consumer then mine = tonumber(c[2]) end
    end
    if mine ~= n then return {'stale', mine} end
else
    local pend = redis.call('XPENDING', KEYS[1], group, ARGV[first], ARGV[first + n - 1], n, consumer)
    if #pend ~= n then return {'stale', #pend} end
    for j = 1, n do
        if pend[j][1] ~= ARGV[first + j - 1] then return {'stale', j - 1} end
    end
end

-- writes
for k = 6, nkeys do
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
if nkeys > 5 then redis.call('INCR', KEYS[5]) end
for j = dead_at, nargs, 4 do
    redis.call('XADD', KEYS[4], '*', 'reason', ARGV[j], 'id', ARGV[j + 1], 'raw', ARGV[j + 2], 'detail', ARGV[j + 3])
end
local acked = 0
if all then
    acked = redis.call('XGROUP', 'DELCONSUMER', KEYS[1], group, consumer)
else
    for j = first, first + n - 1, CHUNK do
        acked = acked + redis.call('XACK', KEYS[1], group, unpack(ARGV, j, math.min(j + CHUNK - 1, first + n - 1)))
    end
end
return {'ok', acked}
