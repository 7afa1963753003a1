-- index_job.lua — fragment: a job joins the indexes the dashboard reads.
-- index_job(idx, job_id, created_ms, state, suburb_lower): every job by age, by id (prefix
-- search), by suburb; the index of its status is set_status's (job_status.lua).
--!include job_status.lua
local function index_job(idx, job_id, created_ms, state, suburb)
  local where = state .. '|' .. suburb
  redis.call('ZADD', idx.all, created_ms, job_id)
  redis.call('ZADD', idx.ids, 0, job_id)
  redis.call('ZADD', idx.suburb .. where, created_ms, job_id)
  redis.call('HSET', idx.where, job_id, where)
  redis.call('ZADD', idx.suburbs, 0, suburb .. '|' .. state)
end

-- accept_job(idx, job_id, created_ms, state, suburb_lower): a new job, its hash written
-- with status 'queued': indexed, queued, and one more 'accepted' in the history.
local function accept_job(idx, job_id, created_ms, state, suburb)
  index_job(idx, job_id, created_ms, state, suburb)
  redis.call('ZADD', idx.by_status .. 'queued', created_ms, job_id)
  count(idx, 'accepted')
end

-- restore_job(idx, job_key, job_id, restore, where): rebuild the hash of a job whose record
-- expired (or was deleted) from what its entry carries — `restore`, a field/value array
-- without a status (the caller sets one with set_status), and `where` {created_ms, state,
-- suburb (lower case)} — and index it again. The expired record's outcome leaves its status
-- index here: prune_jobs.lua may not have run yet.
local function restore_job(idx, job_key, job_id, restore, where)
  redis.call('HSET', job_key, unpack(restore))
  for status in pairs(FINISHED) do redis.call('ZREM', idx.by_status .. status, job_id) end
  index_job(idx, job_id, where.created_ms, where.state, where.suburb)
end
