#!lua flags=allow-oom
-- rate.lua — count one event against a budget (failed authentications per address), or,
-- with peek, only say whether one more would still be allowed.
-- KEYS[1] rate bucket   agentlink:rate:<scope>
-- ARGV[1] options, JSON: limit (events per period), period_ms, peek (optional, boolean)
-- Returns {allowed 0/1, retry after ms, remaining}
--!include gcra.lua

local opts = cjson.decode(ARGV[1])
local allowed, retry_ms, remaining = gcra(KEYS[1], opts.limit, opts.period_ms, opts.peek)
return {allowed and 1 or 0, retry_ms, remaining}
