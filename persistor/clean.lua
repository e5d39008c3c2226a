-- clean — step 3 of an archive batch: once MongoDB holds every day of the
-- batch (state=written), delete its frozen hashes and its record, take it out
-- of the pending set, raise system:archived_through to its newest day and bump
-- the archive version — one atomic step, so a reader sees the frozen batch or
-- its effect in MongoDB, and the version tells it which.
--
-- KEYS[1] lease   KEYS[2] pending set   KEYS[3] batch record
-- KEYS[4] archived_through   KEYS[5] archive version   KEYS[6..] frozen keys
-- ARGV[1] lease token   ARGV[2] batch id   ARGV[3] frozen key prefix
--
-- Refuses with LEASE (not the holder), NOTWRITTEN (MongoDB not confirmed:
-- nothing may be deleted) or ARGS (a frozen key that is not this batch's, or
-- not two per day).  Returns 1 when cleaned, 0 when the batch was already
-- cleaned (repeating the step is harmless).
--
-- Partitioned (tagged keys): KEYS[1] is the partition's fence and ARGV[1]
-- '#' .. the caller's fence instead of the lease and its token: refused
-- (LEASE) when the partition's fence is higher, else raised to the caller's.
if #KEYS < 5 or #ARGV ~= 3 or ARGV[1] == '' or ARGV[2] == '' or ARGV[3] == '' then
    return redis.error_reply('ARGS clean expects 5+ keys, a token, a batch id and a prefix')
end
local token, id = ARGV[1], ARGV[2]
local fenced = string.sub(ARGV[1], 1, 1) == '#'
if fenced then
    local mine, have = tonumber(string.sub(ARGV[1], 2)), tonumber(redis.call('GET', KEYS[1]) or '0')
    if not mine or not have or have > mine then
        return redis.error_reply('LEASE clean: a persistor with a higher fence has worked on this partition')
    end
    redis.call('SET', KEYS[1], string.sub(ARGV[1], 2))
elseif redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return redis.error_reply('LEASE clean: the lease is not held by this persistor')
end
if redis.call('SISMEMBER', KEYS[2], id) == 0 then
    return 0
end
local rec = redis.call('HMGET', KEYS[3], 'state', 'days')
if rec[1] ~= 'written' then
    return redis.error_reply('NOTWRITTEN clean: batch ' .. id .. ' is not confirmed in MongoDB')
end
local days = {}
for d in string.gmatch(rec[2] or '', '[^,]+') do
    days[#days + 1] = d
end
if #days == 0 or #KEYS ~= 5 + 2 * #days then
    return redis.error_reply('ARGS clean: expected two frozen keys per day of the batch')
end
local own = ARGV[3] .. id .. ':'
for i = 6, #KEYS do
    local day = days[math.floor((i - 6) / 2) + 1]
    if string.sub(KEYS[i], 1, #own + #day + 1) ~= own .. day .. ':' then
        return redis.error_reply('ARGS clean: ' .. KEYS[i] .. ' is not a frozen key of this batch')
    end
end

for i = 6, #KEYS do
    redis.call('DEL', KEYS[i])
end
redis.call('SREM', KEYS[2], id)
redis.call('DEL', KEYS[3])
local newest = days[#days]
local through = redis.call('GET', KEYS[4])
if not through or through < newest then
    redis.call('SET', KEYS[4], newest)
end
redis.call('INCR', KEYS[5])
return 1
