#!lua
-- submit.lua — accept one report request: the API's only round trip per POST.
-- KEYS[1] stream              agentlink:reports
-- KEYS[2] job hash            agentlink:job:<job_id>
-- KEYS[3] entry index         agentlink:reports:index
-- KEYS[4] rate bucket         agentlink:rate:<scope>        (used when opts.rate_limit > 0)
-- KEYS[5] idempotency record  agentlink:idem:<scope>:<kind>:<sha256 of key>
--                                                           (used when opts.idem_ttl_s > 0)
-- ARGV[1] options, JSON: group, job_id, created_at, created_ms, state, suburb (lower
--         case), idx (the dashboard's indexes, index_job.lua), job_prefix ('agentlink:job:'),
--         rate_limit (requests per period, 0 = off), rate_period_ms, idem_ttl_s (0 = no
--         idempotency key), body_sha256, max_ahead (refuse when more entries than this
--         are ahead; -1 = no limit)
-- ARGV[2] the stream entry, JSON array field, value, field, value, ... (XADD order)
-- ARGV[3] the job hash, JSON array field, value, ...
-- Steps, in order, all or nothing: rate limit, idempotency look-up, backpressure, then
-- XADD + job hash + entry index + indexes (+ the idempotency record). A repeated idempotency key
-- reads the earlier job's hash by name (job_prefix .. job id): its id is only known once
-- the record is read. Returns one of
--   {'limited', retry after ms}
--   {'duplicate', job id, body sha256, job status ('' if its record is gone), position}
--   {'full', entries ahead}
--   {'queued', entry id, entries ahead}
--!include gcra.lua
--!include backlog.lua
--!include index_job.lua

local opts = cjson.decode(ARGV[1])

if opts.rate_limit > 0 then
  local allowed, retry_ms = gcra(KEYS[4], opts.rate_limit, opts.rate_period_ms)
  if not allowed then return {'limited', retry_ms} end
end

if opts.idem_ttl_s > 0 then
  local prior = redis.call('HMGET', KEYS[5], 'job_id', 'body_sha256')
  if prior[1] then
    local job = redis.call('HMGET', opts.job_prefix .. prior[1], 'status', 'entry_id')
    local ahead = 0
    if job[1] == 'queued' and job[2] then ahead = position(KEYS[1], opts.group, job[2]) end
    return {'duplicate', prior[1], prior[2] or '', job[1] or '', ahead}
  end
end

local lag, pending = group_state(KEYS[1], opts.group)
local ahead = lag + pending
if opts.max_ahead >= 0 and ahead > opts.max_ahead then return {'full', ahead} end

local id = redis.call('XADD', KEYS[1], '*', unpack(cjson.decode(ARGV[2])))
local job = cjson.decode(ARGV[3])
redis.call('HSET', KEYS[2], 'entry_id', id, unpack(job))
redis.call('HSET', KEYS[3], id, opts.job_id)
accept_job(opts.idx, opts.job_id, opts.created_ms, opts.state, opts.suburb)
if opts.idem_ttl_s > 0 then
  redis.call('HSET', KEYS[5], 'job_id', opts.job_id, 'body_sha256', opts.body_sha256,
    'created_at', opts.created_at)
  redis.call('EXPIRE', KEYS[5], opts.idem_ttl_s)
end
return {'queued', id, ahead}
