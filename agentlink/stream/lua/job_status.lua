-- job_status.lua — fragment: what "finished" means, and a job's move between statuses.
-- Every script that changes a job's status goes through set_status, so the indexes the
-- dashboard pages through stay exact, and outcomes are counted once, where they happen.
--
-- idx (from the options every such script receives, built by Python's Keys):
--   idx.all        zset  job id -> created ms (every job)
--   idx.by_status  prefix of one zset per status, job id -> created ms
--   idx.history    prefix of one hash per hour: field '<minute>:<event>' -> count (26 h)
--!include time.lua

local FINISHED = {completed = true, failed = true, dead = true, cancelled = true}

-- finished(status) -> true once the job will not change any more (until a replay)
local function finished(status)
  return FINISHED[status] == true
end

-- count(idx, event): one more `event` (accepted, completed, failed, dead, cancelled) in
-- this minute's bucket of the history
local function count(idx, event)
  local now = now_ms()
  local key = idx.history .. math.floor(now / 3600000)
  redis.call('HINCRBY', key, (math.floor(now / 60000) % 60) .. ':' .. event, 1)
  redis.call('EXPIRE', key, 93600)
end

-- set_status(idx, job_key, job_id, new): HSET the status and move the job to the index of
-- the new one; outcomes are counted in the history. Returns the previous status (false
-- for a job that had none).
local function set_status(idx, job_key, job_id, new)
  local old = redis.call('HGET', job_key, 'status')
  redis.call('HSET', job_key, 'status', new)
  if old == new then return old end
  local created = redis.call('ZSCORE', idx.all, job_id)
  if not created then
    created = tonumber(redis.call('HGET', job_key, 'created_ms')) or now_ms()
    redis.call('ZADD', idx.all, created, job_id)
  end
  if old then redis.call('ZREM', idx.by_status .. old, job_id) end
  redis.call('ZADD', idx.by_status .. new, created, job_id)
  if FINISHED[new] then count(idx, new) end
  return old
end
