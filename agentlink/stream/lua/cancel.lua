#!lua flags=allow-oom
-- cancel.lua — cancel a job.
-- KEYS[1] job hash    agentlink:job:<job_id>
-- KEYS[2] callbacks   agentlink:callbacks
-- ARGV[1] options, JSON: idx (job_status.lua), job_id, owner (the caller's tenant; '' may
--         cancel any job), ttl_s, finished_at, error (the reason recorded), event (the
--         'cancelled' timeline event), cap
-- A queued job is cancelled at once: it will never render (the consumer that reads its
-- entry finds it finished and only acks it) and its callback is queued. A job being made
-- (processing, retrying) gets `cancel_requested`: its consumer stops the render at its next
-- lease renewal and records 'cancelled' itself. Returns {verdict, status}: 'missing' (no
-- such job, or another tenant's), 'finished', 'cancelled' or 'requested'.
--!include job_status.lua
--!include timeline.lua
--!include outcome.lua

local opts = cjson.decode(ARGV[1])
local job = redis.call('HMGET', KEYS[1], 'status', 'owner')
if not job[1] then return {'missing', ''} end
if opts.owner ~= '' and job[2] and job[2] ~= '' and job[2] ~= opts.owner then
  return {'missing', ''}
end
if finished(job[1]) then return {'finished', job[1]} end
if job[1] == 'queued' then
  set_status(opts.idx, KEYS[1], opts.job_id, 'cancelled')
  redis.call('HSET', KEYS[1], 'finished_at', opts.finished_at, 'error', opts.error)
  append_event(KEYS[1], opts.event, opts.cap, false)
  redis.call('EXPIRE', KEYS[1], opts.ttl_s)
  outcome_hooks(KEYS[1], KEYS[2], '', 0, 0)
  return {'cancelled', 'cancelled'}
end
redis.call('HSET', KEYS[1], 'cancel_requested', opts.finished_at)
opts.event.event = 'cancel_requested'
append_event(KEYS[1], opts.event, opts.cap, false)
return {'requested', job[1]}
