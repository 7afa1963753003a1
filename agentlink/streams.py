"""Redis key names and the stream operations the API, the consumers and the CLI share.

Every multi-key change is one Lua script, so it is atomic and lands in the AOF as one
unit: enqueue (job hash + XADD + entry index), finish (job hash + XACK), dead-letter
(copy + job hash + XACK), replay (XADD + job hash + XDEL of the dead letter) and the
guarded lease renewal. The scripts are plain strings here; each side registers them on its
own client (sync for consumers and CLI, asyncio for the API).

Key layout (prefix ``agentlink`` by default, configurable so environments can share a
server)::

    agentlink:reports           stream of report requests, consumer group "renderers"
    agentlink:reports:dead      dead letters: original fields + error history
    agentlink:reports:index     hash entry id -> job id for entries not yet acked
    agentlink:job:<job_id>      hash: the job's status record
    agentlink:consumers         sorted set: consumer name -> last heartbeat (unix s)
    agentlink:consumer:<name>   hash: heartbeat owner token and current job
    agentlink:idem:<scope>:<kind>:<key sha256>  hash: job_id, body_sha256 (expires)
    agentlink:rate:<scope>      GCRA state of one API key's rate limit (expires)
    agentlink:stats:service     hash: EWMA of completed jobs' service time
    agentlink:stats:work        hash: busy seconds and finished jobs (scaling gauges)
    agentlink:stats:samples     sorted set: counter samples over the scaling window
    agentlink:callbacks         stream of callbacks to deliver, consumer group "notifiers"
    agentlink:callbacks:delayed sorted set: callbacks waiting for their retry (score: due ms)
    agentlink:callbacks:dead    callbacks given up on: fields + last error
    agentlink:notifiers         sorted set: notifier name -> last heartbeat (unix s)
    agentlink:notifier:<name>   hash: a notifier's heartbeat owner token

A finished job whose hash carries a ``callback_url`` gets its callback XADDed by the very
script that records the outcome, so no crash between the two can lose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

GROUP = "renderers"
CALLBACK_GROUP = "notifiers"
SERVICE_EWMA_ALPHA = 0.2
"""Weight of the newest completed job in the service-time average."""

ENQUEUE_LUA = """
-- KEYS: stream, job hash, index[, idempotency key]. ARGV: group, idempotency ttl s,
-- body sha256, n entry field/value items, entry items..., hash items...
-- With an idempotency key the check, the enqueue and the key's record are one step, so
-- two concurrent requests with the same key can never both enqueue.
-- Returns {'queued', entry id, entries ahead} or {'duplicate', job id, body sha256}.
if #KEYS == 4 then
  local prior = redis.call('HMGET', KEYS[4], 'job_id', 'body_sha256')
  if prior[1] then return {'duplicate', prior[1], prior[2] or ''} end
end
local n = tonumber(ARGV[4])
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5, n + 4))
redis.call('HSET', KEYS[2], 'entry_id', id, unpack(ARGV, n + 5))
local job_id = redis.call('HGET', KEYS[2], 'job_id')
redis.call('HSET', KEYS[3], id, job_id)
if #KEYS == 4 then
  redis.call('HSET', KEYS[4], 'job_id', job_id, 'body_sha256', ARGV[3],
    'created_at', redis.call('HGET', KEYS[2], 'created_at'))
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[2]))
end
-- Entries ahead of this one: undelivered older entries (lag, less this one) + pending.
local ahead = 0
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = {}
  for i = 1, #row, 2 do g[row[i]] = row[i + 1] end
  if g['name'] == ARGV[1] then
    local lag = g['lag']
    if not lag then -- unknown after deletions: count the undelivered entries (bounded)
      lag = #redis.call('XRANGE', KEYS[1], '(' .. g['last-delivered-id'], id, 'COUNT', 10000)
    end
    ahead = math.max(0, lag - 1) + g['pending']
  end
end
return {'queued', id, ahead}
"""

POSITION_LUA = """
-- KEYS: stream. ARGV: group, entry id. Entries ahead of a queued entry: pending ones plus
-- the undelivered ones older than it (0 once it has been delivered).
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = {}
  for i = 1, #row, 2 do g[row[i]] = row[i + 1] end
  if g['name'] == ARGV[1] then
    local last = g['last-delivered-id']
    local lms, lseq = string.match(last, '(%d+)-(%d+)')
    local ems, eseq = string.match(ARGV[2], '(%d+)-(%d+)')
    lms, lseq, ems, eseq = tonumber(lms), tonumber(lseq), tonumber(ems), tonumber(eseq)
    if ems < lms or (ems == lms and eseq <= lseq) then return 0 end
    local older = #redis.call('XRANGE', KEYS[1], '(' .. last, '(' .. ARGV[2], 'COUNT', 10000)
    return older + g['pending']
  end
end
return 0
"""

BACKLOG_LUA = """
-- KEYS: stream, service stats hash, consumers set. ARGV: group, live since (unix s).
-- What a wait estimate needs, read in one step: {undelivered, pending, service time s
-- (moving average, '' before the first completed job), live consumers}.
local lag, pending = 0, 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local g = {}
    for i = 1, #row, 2 do g[row[i]] = row[i + 1] end
    if g['name'] == ARGV[1] then
      lag = g['lag']
      if not lag then
        lag = #redis.call('XRANGE', KEYS[1], '(' .. g['last-delivered-id'], '+', 'COUNT', 10000)
      end
      pending = g['pending']
    end
  end
end
local service = redis.call('HGET', KEYS[2], 'ewma_s') or ''
return {lag, pending, service, redis.call('ZCOUNT', KEYS[3], ARGV[2], '+inf')}
"""

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

RATE_LIMIT_LUA = """
-- KEYS: the caller's bucket. ARGV: limit (requests per period), period ms.
-- GCRA (a leaky bucket kept as one timestamp): a burst of up to `limit` requests, then one
-- every period/limit ms. Redis's clock is the one clock every API process shares.
-- Returns {allowed 0/1, retry after ms, remaining}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - period > now then
  return {0, math.ceil(new_tat - period - now), 0}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now))
return {1, 0, math.floor((period - (new_tat - now)) / interval)}
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


@dataclass(frozen=True, slots=True)
class Keys:
    """Every Redis key name AgentLink uses, under one prefix."""

    prefix: str = "agentlink"
    group: str = GROUP

    @property
    def stream(self) -> str:
        """The stream of report requests."""
        return f"{self.prefix}:reports"

    @property
    def dead(self) -> str:
        """The dead-letter stream."""
        return f"{self.prefix}:reports:dead"

    @property
    def index(self) -> str:
        """Hash of entry id -> job id, for entries not acked yet."""
        return f"{self.prefix}:reports:index"

    @property
    def consumers(self) -> str:
        """Sorted set of consumer name -> last heartbeat."""
        return f"{self.prefix}:consumers"

    @property
    def trim_lock(self) -> str:
        """Held by the one consumer that trims the stream this round."""
        return f"{self.prefix}:reports:trim-lock"

    @property
    def work_stats(self) -> str:
        """Hash of cumulative busy seconds (``busy_s``) and finished jobs (``done``)."""
        return f"{self.prefix}:stats:work"

    @property
    def stat_samples(self) -> str:
        """Sorted set of counter samples scored by their unix time (scaling gauges)."""
        return f"{self.prefix}:stats:samples"

    def job(self, job_id: str) -> str:
        """The job's status hash."""
        return f"{self.prefix}:job:{job_id}"

    def consumer(self, name: str) -> str:
        """A consumer's heartbeat hash (owner token, current job)."""
        return f"{self.prefix}:consumer:{name}"

    def idempotency(self, scope: str, kind: str, key_sha256: str) -> str:
        """The record of one idempotency key: per caller (API key) and per report kind."""
        return f"{self.prefix}:idem:{scope}:{kind}:{key_sha256}"

    def rate(self, scope: str) -> str:
        """The rate-limit state of one caller."""
        return f"{self.prefix}:rate:{scope}"

    @property
    def service_stats(self) -> str:
        """Hash with the moving average of completed jobs' service time."""
        return f"{self.prefix}:stats:service"

    @property
    def callbacks(self) -> CallbackKeys:
        """The key names of the callback stream, shaped like these so the same queue
        code (reads, leases, reclaim, heartbeats) serves both streams."""
        return CallbackKeys(self.prefix)


@dataclass(frozen=True, slots=True)
class CallbackKeys(Keys):
    """The callback stream's keys: group ``notifiers``, heartbeats of its own."""

    group: str = CALLBACK_GROUP

    @property
    def stream(self) -> str:
        """The stream of callbacks to deliver."""
        return f"{self.prefix}:callbacks"

    @property
    def dead(self) -> str:
        """Callbacks given up on."""
        return f"{self.prefix}:callbacks:dead"

    @property
    def delayed(self) -> str:
        """Sorted set of callbacks waiting for a retry, scored by due time (ms)."""
        return f"{self.prefix}:callbacks:delayed"

    @property
    def index(self) -> str:
        """Unused by callbacks; named so nothing collides with the report index."""
        return f"{self.prefix}:callbacks:index"

    @property
    def consumers(self) -> str:
        """Sorted set of notifier name -> last heartbeat."""
        return f"{self.prefix}:notifiers"

    @property
    def trim_lock(self) -> str:
        """Unused: delivered callbacks are deleted at once."""
        return f"{self.prefix}:callbacks:trim-lock"

    def consumer(self, name: str) -> str:
        """A notifier's heartbeat hash."""
        return f"{self.prefix}:notifier:{name}"


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, the format of every timestamp."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def entry_time_s(entry_id: str) -> float:
    """The unix time (seconds) encoded in a stream entry id."""
    return int(entry_id.split("-", 1)[0]) / 1000


def flatten(fields: dict[str, str]) -> list[str]:
    """``{"a": "1"}`` -> ``["a", "1"]``: the argument layout of XADD and HSET."""
    return [item for pair in fields.items() for item in pair]


def next_id(entry_id: str) -> str:
    """The smallest stream id greater than ``entry_id``."""
    ms, seq = entry_id.split("-", 1)
    return f"{ms}-{int(seq) + 1}"
