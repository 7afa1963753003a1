#!lua flags=allow-oom
-- callback_promote.lua — move callbacks whose retry is due back onto the stream.
-- KEYS[1] delayed set   agentlink:callbacks:delayed
-- KEYS[2] callbacks     agentlink:callbacks
-- ARGV[1] the most callbacks to move in one call
-- Each move is atomic: a callback is in exactly one of the two. Returns how many moved.
--!include time.lua

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0,
  tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local flat = {}
  for k, v in pairs(cjson.decode(member)) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  redis.call('XADD', KEYS[2], '*', unpack(flat))
  redis.call('ZREM', KEYS[1], member)
end
return #due
