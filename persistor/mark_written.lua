-- mark_written — after every day of the batch is confirmed in MongoDB,
-- record it (state=written) so a recovery goes straight to the clean-up.
--
-- KEYS[1] lease   KEYS[2] pending set   KEYS[3] batch record
-- ARGV[1] lease token   ARGV[2] batch id
-- Refuses with LEASE (not the holder) or NOTPENDING (no such pending batch).
-- Returns 1.
--
-- Partitioned (tagged keys): KEYS[1] is the partition's fence and ARGV[1]
-- '#' .. the caller's fence instead of the lease and its token: refused
-- (LEASE) when the partition's fence is higher, else raised to the caller's.
if #KEYS ~= 3 or #ARGV ~= 2 or ARGV[1] == '' or ARGV[2] == '' then
    return redis.error_reply('ARGS mark_written expects 3 keys, a token and a batch id')
end
local fenced = string.sub(ARGV[1], 1, 1) == '#'
if fenced then
    local mine, have = tonumber(string.sub(ARGV[1], 2)), tonumber(redis.call('GET', KEYS[1]) or '0')
    if not mine or not have or have > mine then
        return redis.error_reply('LEASE mark_written: a persistor with a higher fence has worked on this partition')
    end
    redis.call('SET', KEYS[1], string.sub(ARGV[1], 2))
elseif redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return redis.error_reply('LEASE mark_written: the lease is not held by this persistor')
end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then
    return redis.error_reply('NOTPENDING mark_written: batch ' .. ARGV[2] .. ' is not pending')
end
redis.call('HSET', KEYS[3], 'state', 'written')
return 1
