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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

GROUP = "renderers"

ENQUEUE_LUA = """
-- KEYS: stream, job hash, index. ARGV: n entry field/value items, entry items..., hash items...
local n = tonumber(ARGV[1])
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2, n + 1))
redis.call('HSET', KEYS[2], 'entry_id', id, unpack(ARGV, n + 2))
redis.call('HSET', KEYS[3], id, redis.call('HGET', KEYS[2], 'job_id'))
return id
"""

FINISH_LUA = """
-- KEYS: stream, job hash, index. ARGV: group, entry id, ttl s, hash items...
-- Writes the outcome only if the job exists and is not finished (check-and-set), then acks.
local status = redis.call('HGET', KEYS[2], 'status')
local wrote = 0
if status and status ~= 'completed' and status ~= 'failed' and status ~= 'dead' then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
  wrote = 1
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return wrote
"""

DEAD_LETTER_LUA = """
-- KEYS: stream, dead stream, job hash, index. ARGV: group, entry id, ttl s, n dead items,
-- dead items..., hash items... Copy to the dead letters and ack in one step.
local n = tonumber(ARGV[4])
local dead_id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5, n + 4))
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'dead_id', dead_id, unpack(ARGV, n + 5))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return dead_id
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

    def job(self, job_id: str) -> str:
        """The job's status hash."""
        return f"{self.prefix}:job:{job_id}"

    def consumer(self, name: str) -> str:
        """A consumer's heartbeat hash (owner token, current job)."""
        return f"{self.prefix}:consumer:{name}"


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
