-- migrate_clock — rewrite the Python service's virtual clock (a naive ISO
-- time, UTC) in txagg's form, compare-and-set.
--
-- KEYS[1] system:virtual_clock   ARGV[1] the value read   ARGV[2] txagg's form
--
-- Returns 1 when rewritten, 0 when it already holds txagg's form, or the
-- error CHANGED when it holds something else now (nothing written).
if #KEYS ~= 1 or #ARGV ~= 2 or ARGV[2] == '' then
    return redis.error_reply('ARGS migrate_clock expects 1 key, the old and the new value')
end
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'string' then return redis.error_reply('CHANGED migrate_clock: ' .. KEYS[1] .. ' is not a string') end
local now = redis.call('GET', KEYS[1])
if now == ARGV[2] then return 0 end
if now ~= ARGV[1] then return redis.error_reply('CHANGED migrate_clock: ' .. KEYS[1] .. ' changed meanwhile') end
redis.call('SET', KEYS[1], ARGV[2])
return 1
