-- timeline.lua — fragment: a job's timeline, the JSON array in its hash's `events` field
-- (so it expires with the job), newest `cap` events kept.
-- append_event(job_key, event, cap, fold) adds the decoded `event` table; with `fold`, an
-- event repeating the last one (same name and consumer: lease renewals) only bumps the
-- last one's count and time.
local function append_event(job_key, event, cap, fold)
  local events = {}
  local raw = redis.call('HGET', job_key, 'events')
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then events = decoded end
  end
  local last = events[#events]
  if fold and last and last['event'] == event['event'] and last['consumer'] == event['consumer'] then
    last['at'] = event['at']
    last['count'] = (tonumber(last['count']) or 1) + 1
  else
    events[#events + 1] = event
    while #events > cap do table.remove(events, 1) end
  end
  redis.call('HSET', job_key, 'events', cjson.encode(events))
end
