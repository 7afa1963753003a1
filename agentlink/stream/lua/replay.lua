#!lua flags=allow-oom
-- replay.lua — queue a dead letter again, as a new entry of the same job.
-- KEYS[1] dead letters   agentlink:reports:dead
-- KEYS[2] stream         agentlink:reports
-- KEYS[3] job hash       agentlink:job:<job_id>
-- KEYS[4] entry index    agentlink:reports:index
-- ARGV[1] options, JSON: idx (job_status.lua), dead_id, job_id,
--   entry    field/value array of the new stream entry (the dead letter's original fields)
--   restore  field/value array of the job's hash if it expired meanwhile (the letter's
--            fields: its owner and request id included; no status), where: its indexes
--            (index_job.lua restore_job)
--   event    the 'replayed' timeline event; cap: timeline length
-- Re-enqueues and removes the dead letter in one step; the job is queued again (no expiry,
-- no outcome) and indexed. Returns the new entry id ('' when there is no such dead letter).
--!include job_status.lua
--!include index_job.lua
--!include timeline.lua

local opts = cjson.decode(ARGV[1])
if #redis.call('XRANGE', KEYS[1], opts.dead_id, opts.dead_id) == 0 then return '' end
local id = redis.call('XADD', KEYS[2], '*', unpack(opts.entry))
if redis.call('EXISTS', KEYS[3]) == 0 then
  restore_job(opts.idx, KEYS[3], opts.job_id, opts.restore, opts.where)
end
redis.call('HDEL', KEYS[3], 'dead_id', 'finished_at', 'error', 'cancel_requested')
set_status(opts.idx, KEYS[3], opts.job_id, 'queued')
redis.call('HSET', KEYS[3], 'entry_id', id)
redis.call('PERSIST', KEYS[3])
append_event(KEYS[3], opts.event, opts.cap, false)
redis.call('HSET', KEYS[4], id, opts.job_id)
redis.call('XDEL', KEYS[1], opts.dead_id)
return id
