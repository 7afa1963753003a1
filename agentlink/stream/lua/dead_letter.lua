#!lua flags=allow-oom
-- dead_letter.lua — give an entry up: copy it to the dead letters, mark its job dead, ack.
-- KEYS[1] stream         agentlink:reports
-- KEYS[2] dead letters   agentlink:reports:dead
-- KEYS[3] job hash       agentlink:job:<job_id> (any absent key for an unreadable entry)
-- KEYS[4] entry index    agentlink:reports:index
-- KEYS[5] callbacks      agentlink:callbacks
-- KEYS[6] consumer hash  agentlink:consumer:<name>
-- KEYS[7] work stats     agentlink:stats:work
-- ARGV[1] options, JSON: idx, group, entry_id, job_id, consumer, ttl_s,
--   letter   field/value array of the dead letter (the entry's fields, the error,
--            deliveries, …); the job's error history is added here, as `errors`
--   record   the last attempt's error record, appended to that history first ({} for none)
--   fields   field/value array written to the job with its outcome (finished_at, error)
--   events   timeline events appended with it; cap: timeline length
--   busy_s   time the consumer spent on the entry (the scaling gauges; 0: none)
-- Buries nothing (and returns '') when another consumer owns the entry now; when the job
-- already has an outcome the entry is only acked. Returns the dead letter's id.
--!include ownership.lua
--!include job_status.lua
--!include timeline.lua
--!include outcome.lua
--!include settle_entry.lua

local opts = cjson.decode(ARGV[1])
local holder = owner(KEYS[1], opts.group, opts.entry_id)
if holder and holder ~= opts.consumer then return '' end
local status = redis.call('HGET', KEYS[3], 'status')
local dead_id = ''
if not finished(status) then
  local errors = {}
  local ok, decoded = pcall(cjson.decode, redis.call('HGET', KEYS[3], 'errors') or '[]')
  if ok and type(decoded) == 'table' then errors = decoded end
  if opts.record.error then errors[#errors + 1] = opts.record end
  local history = #errors > 0 and cjson.encode(errors) or '[]'
  local letter = opts.letter
  letter[#letter + 1] = 'errors'
  letter[#letter + 1] = history
  dead_id = redis.call('XADD', KEYS[2], '*', unpack(letter))
  if status then
    set_status(opts.idx, KEYS[3], opts.job_id, 'dead')
    redis.call('HSET', KEYS[3], 'dead_id', dead_id, 'errors', history, unpack(opts.fields))
    redis.call('HDEL', KEYS[3], 'cancel_requested')
    for _, event in ipairs(opts.events) do append_event(KEYS[3], event, opts.cap, false) end
    redis.call('EXPIRE', KEYS[3], opts.ttl_s)
    outcome_hooks(KEYS[3], KEYS[5], '', 0, 0)
  end
end
settle_entry(KEYS[1], opts.group, opts.entry_id, KEYS[4], KEYS[6], KEYS[7], opts.busy_s,
  dead_id ~= '')
return dead_id
