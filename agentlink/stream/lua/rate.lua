#!lua flags=allow-oom
-- rate.lua — count one event against a budget (failed authentications per address).
-- KEYS[1] rate bucket   agentlink:rate:<scope>
-- ARGV[1] options, JSON: limit (events per period), period_ms
-- Returns {allowed 0/1, retry after ms, remaining}
--!include gcra.lua

local opts = cjson.decode(ARGV[1])
local allowed, retry_ms, remaining = gcra(KEYS[1], opts.limit, opts.period_ms)
return {allowed and 1 or 0, retry_ms, remaining}
