-- lease_acquire — take the persistor lease if nobody holds it, and draw this
-- holder's fencing token in the same atomic step (so a fence is never drawn
-- for a lease that was not taken, and never missing for one that was).
--
-- KEYS[1] lease key   KEYS[2] fence counter
-- ARGV[1] random token of this acquisition   ARGV[2] time to live, ms
-- Returns the new fence (> 0), or 0 when another holder has the lease.
if #KEYS ~= 2 or #ARGV ~= 2 then
    return redis.error_reply('ARGS lease_acquire expects 2 keys and 2 arguments')
end
local ttl = tonumber(ARGV[2])
if ARGV[1] == '' or not ttl or ttl < 1 or ttl ~= math.floor(ttl) then
    return redis.error_reply('ARGS lease_acquire: bad token or ttl')
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 0
end
return redis.call('INCR', KEYS[2])
