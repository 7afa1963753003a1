#!lua flags=allow-oom
-- callback_settle.lua — settle one delivery of a callback, only while this notifier still
-- owns its entry (another one may have reclaimed it).
-- KEYS[1] callbacks       agentlink:callbacks
-- KEYS[2] delayed set     agentlink:callbacks:delayed (member: the callback's fields as
--                         JSON, score: when its retry is due, ms)
-- KEYS[3] dead callbacks  agentlink:callbacks:dead
-- ARGV[1] options, JSON: group, consumer, entry_id, mode ('done' | 'retry' | 'dead'),
--         delay_ms (for 'retry'), fields (the callback's field/value array, as it goes on)
-- 'retry' parks the callback in the delayed set until Redis time + delay, 'dead' copies it
-- to the dead callbacks; then the entry is acked and deleted, atomically. Returns 1 if
-- settled, 0 if another notifier owns the entry now.
--!include ownership.lua
--!include time.lua

local opts = cjson.decode(ARGV[1])
if owner(KEYS[1], opts.group, opts.entry_id) ~= opts.consumer then return 0 end
if opts.mode == 'retry' then
  local item = {}
  for i = 1, #opts.fields, 2 do item[opts.fields[i]] = opts.fields[i + 1] end
  redis.call('ZADD', KEYS[2], now_ms() + opts.delay_ms, cjson.encode(item))
elseif opts.mode == 'dead' then
  redis.call('XADD', KEYS[3], '*', unpack(opts.fields))
end
redis.call('XACK', KEYS[1], opts.group, opts.entry_id)
redis.call('XDEL', KEYS[1], opts.entry_id)
return 1
