#!lua flags=allow-oom
-- prune_jobs.lua — drop jobs whose records expired from the indexes the dashboard reads.
-- KEYS[1] all jobs   agentlink:jobs (job id -> created ms)
-- ARGV[1] options, JSON: idx (the index keys: by_status, ids, where, suburb, suburbs),
--         statuses (every status), job_prefix ('agentlink:job:'), before_ms (only jobs
--         created before this), limit
-- Finished job hashes expire (AGENTLINK_JOB_TTL_S); their index entries are removed here,
-- at most `limit` per call, oldest first; a suburb whose last job goes leaves the list of
-- suburbs asked for. Returns how many jobs were dropped.
local opts = cjson.decode(ARGV[1])
local dropped = 0
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', opts.before_ms, 'LIMIT', 0, opts.limit)
for _, job_id in ipairs(ids) do
  if redis.call('EXISTS', opts.job_prefix .. job_id) == 0 then
    redis.call('ZREM', KEYS[1], job_id)
    for _, status in ipairs(opts.statuses) do
      redis.call('ZREM', opts.idx.by_status .. status, job_id)
    end
    redis.call('ZREM', opts.idx.ids, job_id)
    local where = redis.call('HGET', opts.idx.where, job_id)
    if where then
      redis.call('ZREM', opts.idx.suburb .. where, job_id)
      redis.call('HDEL', opts.idx.where, job_id)
      if redis.call('EXISTS', opts.idx.suburb .. where) == 0 then
        -- where is '<STATE>|<suburb>' (a state holds no '|'); the list holds '<suburb>|<STATE>'
        local state, suburb = string.match(where, '^([^|]*)|(.*)$')
        if state then redis.call('ZREM', opts.idx.suburbs, suburb .. '|' .. state) end
      end
    end
    dropped = dropped + 1
  end
end
return dropped
