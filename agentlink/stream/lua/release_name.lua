#!lua flags=allow-oom
-- release_name.lua — give a consumer name back, only if this process holds it.
-- KEYS[1] member hash   agentlink:consumer:<name>
-- KEYS[2] member set    agentlink:consumers
-- ARGV[1] token (this process's), ARGV[2] name
-- Compare-and-delete, atomically: a process that lost its name meanwhile must not delete
-- the new holder's. A hash that expired (a beat came late) holds nothing: the name leaves
-- the set all the same. Returns 1 if released.
local holder = redis.call('HGET', KEYS[1], 'token')
if holder and holder ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
