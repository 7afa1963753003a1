#!lua flags=allow-oom
-- start.lua — a consumer starts an attempt at a job: one round trip.
-- KEYS[1] job hash        agentlink:job:<job_id>
-- KEYS[2] consumer hash   agentlink:consumer:<name>  (its heartbeat: what it works on)
-- ARGV[1] options, JSON:
--   idx        the status indexes and history (job_status.lua)
--   job_id, entry_id, consumer, started_at (ISO), since (unix s, for the heartbeat)
--   event      the 'claimed' timeline event (its attempt is filled in here); cap: timeline
--   restore    field/value array written first when the job has no hash (it expired or
--              was deleted while its entry waited): the entry still says what to do and
--              whose job it is (no status); where: its indexes (index_job.lua restore_job)
-- Counts the attempt and marks the job processing, unless it already has an outcome (then
-- nothing is written). Returns {attempt, request_id, created_at, cancel_requested};
-- attempt is -1 (and the second element the status) for a finished job.
--!include job_status.lua
--!include index_job.lua
--!include timeline.lua

local opts = cjson.decode(ARGV[1])
local status = redis.call('HGET', KEYS[1], 'status')
if not status and #opts.restore > 0 then
  restore_job(opts.idx, KEYS[1], opts.job_id, opts.restore, opts.where)
end
if finished(status) then return {-1, status} end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
set_status(opts.idx, KEYS[1], opts.job_id, 'processing')
redis.call('HSET', KEYS[1], 'started_at', opts.started_at, 'consumer', opts.consumer,
  'entry_id', opts.entry_id)
opts.event.attempt = attempt
append_event(KEYS[1], opts.event, opts.cap, false)
redis.call('HSET', KEYS[2], 'job', opts.job_id, 'entry', opts.entry_id, 'state', 'busy',
  'job_since', opts.since)
local info = redis.call('HMGET', KEYS[1], 'request_id', 'created_at', 'cancel_requested')
return {attempt, info[1] or '', info[2] or '', info[3] or ''}
