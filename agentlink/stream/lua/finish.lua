#!lua flags=allow-oom
-- finish.lua — record a job's outcome and ack its entry: one step.
-- KEYS[1] stream           agentlink:reports
-- KEYS[2] job hash         agentlink:job:<job_id> (any absent key for an entry without one)
-- KEYS[3] entry index      agentlink:reports:index
-- KEYS[4] callbacks        agentlink:callbacks
-- KEYS[5] service stats    agentlink:stats:service
-- KEYS[6] work stats       agentlink:stats:work
-- KEYS[7] consumer hash    agentlink:consumer:<name>
-- ARGV[1] options, JSON:
--   idx, group, entry_id, job_id, ttl_s (the finished job's lifetime)
--   status     'completed' | 'failed' | 'dead' | 'cancelled', or '' to ack only
--   fields     field/value array written with the outcome (finished_at, error, result_*)
--   record     the attempt's error record to append to `errors` ({} for none)
--   events     timeline events, appended only with the outcome; cap: timeline length
--   service_s  the completed job's service time (feeds the wait estimate; 0: none)
--   busy_s     time the consumer spent on the entry (the scaling gauges); alpha: EWMA weight
--   consumer, next   with next = 1, the consumer's next new entry is read here too (XREADGROUP
--              COUNT 1, the slot this job frees): one round trip less per job in a backlog
-- The outcome is written only if the job exists and has none yet (check-and-set), with its
-- events, its callback (a snapshot of the record) and its counts; the entry is acked and
-- the consumer marked idle either way. Returns {wrote (1 if this outcome was the one
-- recorded), next entry id, its field/value array} (the last two only when one was read).
--!include job_status.lua
--!include timeline.lua
--!include outcome.lua
--!include settle_entry.lua

local opts = cjson.decode(ARGV[1])
local wrote = 0
local status = redis.call('HGET', KEYS[2], 'status')
if opts.status ~= '' and status and not finished(status) then
  set_status(opts.idx, KEYS[2], opts.job_id, opts.status)
  redis.call('HSET', KEYS[2], unpack(opts.fields))
  redis.call('HDEL', KEYS[2], 'cancel_requested')
  if opts.record.error then
    local errors = {}
    local ok, decoded = pcall(cjson.decode, redis.call('HGET', KEYS[2], 'errors') or '[]')
    if ok and type(decoded) == 'table' then errors = decoded end
    errors[#errors + 1] = opts.record
    redis.call('HSET', KEYS[2], 'errors', cjson.encode(errors))
  end
  for _, event in ipairs(opts.events) do append_event(KEYS[2], event, opts.cap, false) end
  redis.call('EXPIRE', KEYS[2], opts.ttl_s)
  outcome_hooks(KEYS[2], KEYS[4], KEYS[5], opts.alpha, opts.service_s)
  wrote = 1
end
settle_entry(KEYS[1], opts.group, opts.entry_id, KEYS[3], KEYS[7], KEYS[6], opts.busy_s,
  wrote == 1)
if opts.next == 1 then
  local got = redis.call('XREADGROUP', 'GROUP', opts.group, opts.consumer, 'COUNT', 1,
    'STREAMS', KEYS[1], '>')
  if got then return {wrote, got[1][2][1][1], got[1][2][1][2]} end
end
return {wrote}
