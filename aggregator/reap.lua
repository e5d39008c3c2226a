-- reap.lua — delete the consumers that replicas left behind, atomically.
-- Called by aggregator/trim.c about once a minute.
--
-- KEYS[1] stream.  ARGV[1] group, ARGV[2] the calling consumer (never
-- deleted), ARGV[3] minimum idle time in milliseconds.
--
-- A consumer is deleted only when it has no pending entry and has been idle
-- longer than ARGV[3].  XGROUP DELCONSUMER discards a consumer's pending
-- entries, so the pending count is read in the same script as the delete:
-- nothing can be delivered to that consumer in between.
--
-- Returns the names deleted.

local min_idle = tonumber(ARGV[3])
if not min_idle or ARGV[1] == '' then return redis.error_reply('reap: bad arguments') end
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end

local deleted = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local info = {}
    for j = 1, #c, 2 do info[c[j]] = c[j + 1] end
    if info['name'] ~= ARGV[2] and tonumber(info['pending']) == 0 and tonumber(info['idle']) > min_idle then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
        deleted[#deleted + 1] = info['name']
    end
end
return deleted
