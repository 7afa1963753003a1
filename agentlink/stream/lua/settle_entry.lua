-- settle_entry.lua — fragment: what follows every outcome of an entry, whoever wrote it.
-- settle_entry(stream, group, entry_id, index, member, work, busy_s, finished):
-- count the consumer's busy time (and, when its outcome was the one recorded, the job)
-- for the scaling gauges, XACK the entry, drop it from the entry index, and mark the
-- consumer's heartbeat idle if it still named this entry.
local function settle_entry(stream, group, entry_id, index, member, work, busy_s, finished)
  if busy_s > 0 then
    redis.call('HINCRBYFLOAT', work, 'busy_s', busy_s)
    if finished then redis.call('HINCRBY', work, 'done', 1) end
  end
  redis.call('XACK', stream, group, entry_id)
  redis.call('HDEL', index, entry_id)
  if redis.call('HGET', member, 'entry') == entry_id then
    redis.call('HSET', member, 'job', '', 'entry', '', 'state', 'idle', 'job_since', '')
  end
end
