-- lease_release — give the lease up at shutdown, only if it is still ours
-- (compare-and-DEL), so a standby takes over at once instead of after the TTL.
--
-- KEYS[1] lease key   ARGV[1] token
-- Returns 1 when released, 0 when it was not ours.
if #KEYS ~= 1 or #ARGV ~= 1 or ARGV[1] == '' then
    return redis.error_reply('ARGS lease_release expects 1 key and a token')
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
redis.call('DEL', KEYS[1])
return 1
