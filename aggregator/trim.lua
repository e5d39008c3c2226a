-- trim.lua — XTRIM the stream behind every group's oldest unacknowledged
-- entry, atomically.  Called by aggregator/trim.c about once a second.
--
-- KEYS[1] stream.  No ARGV.
--
-- For each group of the stream (XINFO GROUPS): the bound is its smallest
-- pending id (XPENDING summary) when it has pending entries, else its
-- last-delivered-id.  Every entry below the smallest bound over all groups
-- has been delivered to and acknowledged by every group, so XTRIM MINID
-- (which keeps ids >= the bound) never removes an entry some group has not
-- delivered or not acknowledged.  Without any group nothing is trimmed
-- (nobody has consumed anything).  `lag` of XINFO GROUPS may be nil and is
-- not used.  Ids are compared as numbers (ms, then seq) on their decimal
-- text: longer is greater, equal lengths compare as strings.
--
-- Returns {entries trimmed, bound used or ""}.

if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end

local function num_less(a, b)
    if #a ~= #b then return #a < #b end
    return a < b
end
local function id_less(x, y)
    local xm, xs = string.match(x, '^(%d+)%-(%d+)$')
    local ym, ys = string.match(y, '^(%d+)%-(%d+)$')
    if xm ~= ym then return num_less(xm, ym) end
    return num_less(xs, ys)
end

local bound = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
    local b = info['last-delivered-id']
    if tonumber(info['pending']) > 0 then
        b = redis.call('XPENDING', KEYS[1], info['name'])[2]
    end
    if not string.match(b, '^%d+%-%d+$') then return redis.error_reply('trim: unexpected id ' .. tostring(b)) end
    if not bound or id_less(b, bound) then bound = b end
end
if not bound then return {0, ''} end
return {redis.call('XTRIM', KEYS[1], 'MINID', bound), bound}
