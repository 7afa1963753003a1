#!lua flags=allow-oom
-- release_name.lua — give a consumer name back, only if this process holds it.
-- KEYS[1] member hash   agentlink:consumer:<name>
-- KEYS[2] member set    agentlink:consumers
-- ARGV[1] token (this process's), ARGV[2] name
-- Compare-and-delete, atomically: a process that lost its name meanwhile must not delete
-- the new holder's. Returns 1 if released.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
