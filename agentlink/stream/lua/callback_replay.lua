#!lua flags=allow-oom
-- callback_replay.lua — send a dead callback again: back onto the callback stream.
-- KEYS[1] dead callbacks  agentlink:callbacks:dead
-- KEYS[2] callbacks       agentlink:callbacks
-- ARGV[1] options, JSON: dead_id (the dead callback's id)
-- The callback goes back as a first attempt, with its delivery id (receivers de-duplicate on
-- it) and without the fields of its failure (error, last_error, dead_at, deliveries); the
-- dead callback is removed in the same step. Returns the new entry id ('' when there is no
-- such dead callback).

local opts = cjson.decode(ARGV[1])
local rows = redis.call('XRANGE', KEYS[1], opts.dead_id, opts.dead_id)
if #rows == 0 then return '' end
local flat = rows[1][2]
local DROP = {error = true, last_error = true, dead_at = true, deliveries = true, attempt = true}
local fields = {'attempt', '1'}
for i = 1, #flat, 2 do
  if not DROP[flat[i]] then
    fields[#fields + 1] = flat[i]
    fields[#fields + 1] = flat[i + 1]
  end
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], opts.dead_id)
return id
