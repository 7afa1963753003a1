-- outcome.lua — fragment: what follows a recorded outcome.
-- outcome_hooks(job_key, callbacks, stats, alpha, service_s): a job with a callback_url
-- gets a callback entry holding a snapshot of its record (events included, the outcome's
-- own last); a completed job's service time (measured by the consumer: `service_s` > 0)
-- feeds the moving average the API's wait estimate uses (a job that failed at once says
-- nothing about how long a report takes).
local function outcome_hooks(job_key, callbacks, stats, alpha, service_s)
  local status = redis.call('HGET', job_key, 'status')
  if stats ~= '' and status == 'completed' and service_s and service_s > 0 then
    local old = tonumber(redis.call('HGET', stats, 'ewma_s'))
    local ewma = old and (alpha * service_s + (1 - alpha) * old) or service_s
    redis.call('HSET', stats, 'ewma_s', string.format('%.3f', ewma),
      'last_s', string.format('%.3f', service_s))
    redis.call('HINCRBY', stats, 'samples', 1)
  end
  local url = redis.call('HGET', job_key, 'callback_url')
  if callbacks == '' or not url or url == '' then return end
  local flat = redis.call('HGETALL', job_key)
  local record = {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  record['callback_url'] = nil
  redis.call('XADD', callbacks, '*', 'job_id', record['job_id'], 'status', record['status'],
    'url', url, 'attempt', '1', 'record', cjson.encode(record))
end
