-- index_job.lua — fragment: a new job joins the indexes the dashboard reads.
-- index_job(idx, job_id, created_ms, state, suburb_lower): every job by age, by status
-- ('queued'), by id (prefix search), by suburb; and one more 'accepted' in the history.
--!include job_status.lua
local function index_job(idx, job_id, created_ms, state, suburb)
  local where = state .. '|' .. suburb
  redis.call('ZADD', idx.all, created_ms, job_id)
  redis.call('ZADD', idx.by_status .. 'queued', created_ms, job_id)
  redis.call('ZADD', idx.ids, 0, job_id)
  redis.call('ZADD', idx.suburb .. where, created_ms, job_id)
  redis.call('HSET', idx.where, job_id, where)
  redis.call('ZADD', idx.suburbs, 0, suburb .. '|' .. state)
  count(idx, 'accepted')
end
