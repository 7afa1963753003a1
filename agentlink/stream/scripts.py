"""The Lua scripts of the consumers, the notifier and the dead letters (atomic, one AOF
record each).

A finished job whose hash carries a ``callback_url`` gets its callback XADDed by the very
script that records the outcome, so no crash between the two can lose it.
"""

from __future__ import annotations

SERVICE_EWMA_ALPHA = 0.2
"""Weight of the newest completed job in the service-time average."""

_OUTCOME_HOOKS_LUA = """
-- Shared by the outcome scripts. A finished job with a callback_url gets a callback entry
-- holding a snapshot of its record; a completed job feeds the service-time average.
local function iso_ms(iso)
  local y, mo, d, h, mi, s, ms = string.match(iso or '',
    '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)')
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local days = era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    - 719468
  return (((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60 + tonumber(s)) * 1000
    + (tonumber(ms) or 0)
end

local function outcome_hooks(job_key, callbacks_key, stats_key, alpha)
  local flat = redis.call('HGETALL', job_key)
  local record = {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  local status = record['status']
  if status ~= 'completed' and status ~= 'failed' and status ~= 'dead' then return end
  if stats_key and status == 'completed' then
    local started, finished = iso_ms(record['started_at']), iso_ms(record['finished_at'])
    if started and finished and finished >= started then
      local sample = (finished - started) / 1000
      local old = tonumber(redis.call('HGET', stats_key, 'ewma_s'))
      local ewma = old and (alpha * sample + (1 - alpha) * old) or sample
      redis.call('HSET', stats_key, 'ewma_s', string.format('%.3f', ewma),
        'last_s', string.format('%.3f', sample), 'updated_at', record['finished_at'])
      redis.call('HINCRBY', stats_key, 'samples', 1)
    end
  end
  local url = record['callback_url']
  if callbacks_key and url and url ~= '' then
    record['callback_url'] = nil
    redis.call('XADD', callbacks_key, '*', 'job_id', record['job_id'], 'status', status,
      'url', url, 'attempt', '1', 'record', cjson.encode(record))
  end
end
"""

FINISH_LUA = (
    _OUTCOME_HOOKS_LUA
    + """
-- KEYS: stream, job hash, index[, callbacks stream, service stats hash]. ARGV: group,
-- entry id, ttl s, hash items... Writes the outcome only if the job exists and is not
-- finished (check-and-set), queues its callback, then acks.
local status = redis.call('HGET', KEYS[2], 'status')
local wrote = 0
if status and status ~= 'completed' and status ~= 'failed' and status ~= 'dead' then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
  wrote = 1
  if #ARGV > 3 then outcome_hooks(KEYS[2], KEYS[4], KEYS[5], __ALPHA__) end
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return wrote
""".replace("__ALPHA__", str(SERVICE_EWMA_ALPHA))
)

DEAD_LETTER_LUA = (
    _OUTCOME_HOOKS_LUA
    + """
-- KEYS: stream, dead stream, job hash, index[, callbacks stream]. ARGV: group, entry id,
-- ttl s, consumer, n dead items, dead items..., hash items... Copy to the dead letters, mark
-- the job dead, queue its callback and ack in one step. Returns '' and buries nothing when
-- another consumer owns the entry now, or the job already has an outcome (then just acks).
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p > 0 and p[1][2] ~= ARGV[4] then return '' end
local before = redis.call('HGET', KEYS[3], 'status')
if before == 'completed' or before == 'failed' or before == 'dead' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
  return ''
end
local n = tonumber(ARGV[5])
local dead_id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 6, n + 5))
if before then
  redis.call('HSET', KEYS[3], 'dead_id', dead_id, unpack(ARGV, n + 6))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
  outcome_hooks(KEYS[3], KEYS[5], nil, 0)
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return dead_id
"""
)

UPDATE_UNFINISHED_LUA = """
-- KEYS: job hash. ARGV: count an attempt (1/0), field items... Sets the fields only while
-- the job exists and has no outcome: a stalled consumer waking up must not turn a job that
-- another consumer completed back into 'processing' or 'retrying'. Returns the attempt
-- count (with ARGV[1] = 1, after counting) or 0, and -1 when nothing was written.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'failed' or status == 'dead' then
  return -1
end
local n = 0
if ARGV[1] == '1' then n = redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return n
"""

REPLAY_LUA = """
-- KEYS: dead stream, stream, job hash, index. ARGV: dead id, job id, n entry items,
-- entry items..., hash items... Re-enqueue a dead letter as a new entry of the same job
-- (recreating its record if it expired), then drop the dead letter.
local n = tonumber(ARGV[3])
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4, n + 3))
redis.call('HDEL', KEYS[3], 'dead_id', 'finished_at', 'error')
redis.call('HSET', KEYS[3], 'entry_id', id, unpack(ARGV, n + 4))
redis.call('PERSIST', KEYS[3])
redis.call('HSET', KEYS[4], id, ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"""

RENEW_LUA = """
-- KEYS: stream. ARGV: group, consumer, entry id, idle ms. Returns 1 renewed, 0 owned by
-- another consumer (or acked), -1 deleted from the stream.
-- Reset the entry's idle time only while this consumer still owns it: a plain XCLAIM
-- would steal it back from a consumer that reclaimed it after a stall. A deleted entry is
-- left alone: XCLAIM would silently drop it from the PEL, where XAUTOCLAIM reports it.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
if #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) == 0 then return -1 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""

CALLBACK_SETTLE_LUA = """
-- KEYS: callbacks stream, delayed set, dead stream. ARGV: group, consumer, entry id, mode
-- ('done' | 'retry' | 'dead'), delay ms, n field/value items, items...
-- Settles one delivery, only while this notifier still owns the entry (another one may
-- have reclaimed it): 'retry' parks the callback in the delayed set until Redis time +
-- delay, 'dead' copies it to the dead letters; then ack and delete the entry, atomically.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
local n = tonumber(ARGV[6])
if ARGV[4] == 'retry' then
  local item = {}
  for i = 7, n + 6, 2 do item[ARGV[i]] = ARGV[i + 1] end
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], due, cjson.encode(item))
elseif ARGV[4] == 'dead' then
  redis.call('XADD', KEYS[3], '*', unpack(ARGV, 7, n + 6))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
"""

CALLBACK_PROMOTE_LUA = """
-- KEYS: delayed set, callbacks stream. ARGV: max items. Moves callbacks whose retry is due
-- back onto the stream, each move atomic: a callback is in exactly one of the two.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local flat = {}
  for k, v in pairs(cjson.decode(member)) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  redis.call('XADD', KEYS[2], '*', unpack(flat))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""
