-- lease_renew — extend the lease, only while this holder still has it
-- (compare-and-PEXPIRE: a lapsed lease taken by another replica is never
-- extended by the ex-holder).
--
-- KEYS[1] lease key   ARGV[1] token   ARGV[2] time to live, ms
-- Returns 1 when renewed, 0 when the lease is not ours (any more).
if #KEYS ~= 1 or #ARGV ~= 2 then
    return redis.error_reply('ARGS lease_renew expects 1 key and 2 arguments')
end
local ttl = tonumber(ARGV[2])
if ARGV[1] == '' or not ttl or ttl < 1 or ttl ~= math.floor(ttl) then
    return redis.error_reply('ARGS lease_renew: bad token or ttl')
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
