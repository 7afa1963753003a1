#!lua flags=allow-oom
-- forget_consumer.lua — delete an idle consumer from the group, only if it owns nothing.
-- KEYS[1] stream        agentlink:reports
-- KEYS[2] member set    agentlink:consumers
-- ARGV[1] group, ARGV[2] consumer name
-- XGROUP DELCONSUMER drops the consumer's pending entries, which would lose them: refused
-- (-1) while it has any. Returns the number of entries dropped (0) when deleted.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
redis.call('ZREM', KEYS[2], ARGV[2])
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
