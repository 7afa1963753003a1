#!lua flags=allow-oom
-- claim_name.lua — hold a consumer name and beat its heartbeat.
-- KEYS[1] member hash   agentlink:consumer:<name> (or agentlink:notifier:<name>)
-- KEYS[2] member set    agentlink:consumers (or agentlink:notifiers): name -> last beat
-- ARGV[1] options, JSON: token (this process's), ttl_ms (the hash expires unless beaten
--         again: a dead process's name is free a lease later), now_s, name, fields (the
--         heartbeat's field/value array: state, job, memory, …)
-- Two live processes must never share a name: returns 0 when another token holds it.
local opts = cjson.decode(ARGV[1])
local holder = redis.call('HGET', KEYS[1], 'token')
if holder and holder ~= opts.token then return 0 end
redis.call('HSET', KEYS[1], 'token', opts.token, unpack(opts.fields))
redis.call('PEXPIRE', KEYS[1], opts.ttl_ms)
redis.call('ZADD', KEYS[2], opts.now_s, opts.name)
return 1
