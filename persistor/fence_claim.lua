-- fence_claim — partitioned hot tier only: the lease holder claims one
-- partition for its fence before it looks at the partition's pending batch,
-- so a former holder (a lower fence) is refused by every archive script of
-- the partition from then on; and, as a write on the partition's primary,
-- it gives the replica wait after a freeze an offset to wait for.
--
-- KEYS[1] the partition's fence (system:archive:fence<tag>)
-- ARGV[1] '#' .. the caller's fence (the lease's fencing number)
-- Refuses with LEASE when the partition's fence is higher; else sets it to
-- the caller's (always a write, even when unchanged) and returns 1.
if #KEYS ~= 1 or #ARGV ~= 1 or not string.match(ARGV[1], '^#%d+$') then
    return redis.error_reply('ARGS fence_claim expects 1 key and #<fence>')
end
local mine, have = tonumber(string.sub(ARGV[1], 2)), tonumber(redis.call('GET', KEYS[1]) or '0')
if not mine or not have or have > mine then
    return redis.error_reply('LEASE fence_claim: a persistor with a higher fence has worked on this partition')
end
redis.call('SET', KEYS[1], string.sub(ARGV[1], 2))
return 1
