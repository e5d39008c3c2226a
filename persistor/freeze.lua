-- freeze — step 1 of an archive batch: move the eligible days out of the hot
-- tier into batch-scoped keys, atomically, and record the batch as pending.
--
-- KEYS[1] lease   KEYS[2] pending set   KEYS[3] tracked days
-- KEYS[4] archive version   KEYS[5] batch record (archive:batch:{id})
-- then per candidate day i: agg deposit, agg withdrawal, frozen deposit,
-- frozen withdrawal (KEYS[6 + 4(i-1)] ...)
-- ARGV[1] lease token   ARGV[2] batch id   ARGV[3] fence   ARGV[4] created
-- (UTC ISO)   ARGV[5..] candidate days, YYYY-MM-DD, strictly ascending
--
-- Refuses (error reply, nothing written) when the lease is not the caller's
-- (LEASE), when a batch is already pending (PENDING) or on bad arguments
-- (ARGS).  For each candidate still in the tracked set: RENAME its existing
-- agg hashes to the frozen keys, SREM the day.  When at least one hash moved
-- it writes the batch record (days, fence, state=frozen, created), adds the id
-- to the pending set and bumps the archive version, all in this one script,
-- so a reader sees either the hot hashes or the frozen batch, never neither.
-- Returns the frozen days (empty: no batch was made).
--
-- Partitioned (tagged keys): KEYS[1] is the partition's fence and ARGV[1]
-- '#' .. the caller's fence instead of the lease and its token: refused
-- (LEASE) when the partition's fence is higher, else raised to the caller's.
local ndays = #ARGV - 4
if ndays < 1 or #KEYS ~= 5 + 4 * ndays then
    return redis.error_reply('ARGS freeze: key/day count mismatch')
end
local token, id, fence, created = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if token == '' or id == '' or not string.match(fence, '^%d+$') or created == '' then
    return redis.error_reply('ARGS freeze: empty token, id, created or bad fence')
end
local prev = ''
for i = 1, ndays do
    local day = ARGV[4 + i]
    if not string.match(day, '^%d%d%d%d%-%d%d%-%d%d$') or day <= prev then
        return redis.error_reply('ARGS freeze: days must be YYYY-MM-DD, strictly ascending')
    end
    prev = day
end
local fenced = string.sub(ARGV[1], 1, 1) == '#'
if fenced then
    local mine, have = tonumber(string.sub(ARGV[1], 2)), tonumber(redis.call('GET', KEYS[1]) or '0')
    if not mine or not have or have > mine then
        return redis.error_reply('LEASE freeze: a persistor with a higher fence has worked on this partition')
    end
    redis.call('SET', KEYS[1], string.sub(ARGV[1], 2))
elseif redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return redis.error_reply('LEASE freeze: the lease is not held by this persistor')
end
local pending = redis.call('SMEMBERS', KEYS[2])
if #pending > 0 then
    return redis.error_reply('PENDING freeze: batch ' .. pending[1] .. ' is not cleaned yet')
end
if redis.call('EXISTS', KEYS[5]) == 1 then
    return redis.error_reply('ARGS freeze: batch ' .. id .. ' exists already')
end

-- All checks passed: from here on only writes that cannot fail.
local frozen = {}
for i = 1, ndays do
    local day = ARGV[4 + i]
    if redis.call('SISMEMBER', KEYS[3], day) == 1 then
        local base = 5 + 4 * (i - 1)
        local moved = false
        for t = 1, 2 do
            if redis.call('EXISTS', KEYS[base + t]) == 1 then
                redis.call('RENAME', KEYS[base + t], KEYS[base + 2 + t])
                moved = true
            end
        end
        redis.call('SREM', KEYS[3], day)
        if moved then
            frozen[#frozen + 1] = day
        end
    end
end
if #frozen == 0 then
    return frozen
end
redis.call('HSET', KEYS[5], 'days', table.concat(frozen, ','), 'fence', fence, 'state', 'frozen',
    'created', created)
redis.call('SADD', KEYS[2], id)
redis.call('INCR', KEYS[4])
return frozen
