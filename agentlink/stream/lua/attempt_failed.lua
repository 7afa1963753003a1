#!lua flags=allow-oom
-- attempt_failed.lua — an attempt failed with a transient error and will be retried.
-- KEYS[1] job hash   agentlink:job:<job_id>
-- ARGV[1] options, JSON: idx (job_status.lua), job_id, status ('retrying'), error (the
--         last error's text), record (the attempt's error record, appended to the job's
--         `errors` JSON array; {} for none: waiting is not a failed attempt), events (the
--         timeline events, e.g. 'rendered' then 'retrying'), cap
-- Writes only while the job exists and has no outcome: a stalled consumer waking up must
-- not turn a job another consumer completed back into 'retrying'. Returns 1 if written.
--!include job_status.lua
--!include timeline.lua

local opts = cjson.decode(ARGV[1])
local status = redis.call('HGET', KEYS[1], 'status')
if not status or finished(status) then return 0 end
local errors = {}
local raw = redis.call('HGET', KEYS[1], 'errors')
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then errors = decoded end
end
set_status(opts.idx, KEYS[1], opts.job_id, opts.status)
redis.call('HSET', KEYS[1], 'error', opts.error)
if opts.record.error then
  errors[#errors + 1] = opts.record
  redis.call('HSET', KEYS[1], 'errors', cjson.encode(errors))
end
for _, event in ipairs(opts.events) do append_event(KEYS[1], event, opts.cap, false) end
return 1
