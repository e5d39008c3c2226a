-- migrate_through — after the Python service's documents are converted, let
-- readers see them: the api asks MongoDB only for days up to
-- system:archived_through, which the Python service never wrote.
--
-- KEYS[1] system:archived_through   KEYS[2] system:archive_version
-- ARGV[1] the newest document's day ('' = none)   ARGV[2] '1' when documents
-- were converted by this run
--
-- archived_through = max(itself, ARGV[1]) (days compare as strings); the
-- version is bumped (readers' cold caches dropped) when it was raised or
-- documents changed.  Returns 1 when raised, else 0.
if #KEYS ~= 2 or #ARGV ~= 2 or (ARGV[1] ~= '' and not string.match(ARGV[1], '^%d%d%d%d%-%d%d%-%d%d$')) then
    return redis.error_reply('ARGS migrate_through expects 2 keys, a day or empty, and 0/1')
end
local t1 = redis.call('TYPE', KEYS[1])['ok']
local t2 = redis.call('TYPE', KEYS[2])['ok']
if (t1 ~= 'none' and t1 ~= 'string') or (t2 ~= 'none' and t2 ~= 'string') then
    return redis.error_reply('TYPE migrate_through: a key has the wrong type')
end
local v = redis.call('GET', KEYS[2])
if v and not string.match(v, '^%d+$') then
    return redis.error_reply('TYPE migrate_through: ' .. KEYS[2] .. ' is not a counter')
end
local raised = 0
local through = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and (not through or through < ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1])
    raised = 1
end
if raised == 1 or ARGV[2] == '1' then redis.call('INCR', KEYS[2]) end
return raised
