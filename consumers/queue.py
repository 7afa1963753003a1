"""A consumer's operations on the report stream, and the one place it touches redis-py.

Redis exceptions become ``ServiceUnavailableError`` here, so the consumer loop reasons only
about our own error tree. Multi-key changes go through the Lua scripts of
``agentlink.streams`` (atomic, one AOF record each).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.exceptions

from agentlink.errors import ServiceUnavailableError
from agentlink.jobs import AttemptError, Status, decode_errors, encode_errors
from agentlink.streams import (
    DEAD_LETTER_LUA,
    FINISH_LUA,
    RENEW_LUA,
    Keys,
    flatten,
    next_id,
    now_iso,
)

T = TypeVar("T")

_CLAIM_NAME_LUA = """
-- KEYS: consumer hash, consumers zset. ARGV: token, ttl ms, now s, name, field items...
local owner = redis.call('HGET', KEYS[1], 'token')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

_FORGET_CONSUMER_LUA = """
-- KEYS: stream. ARGV: group, consumer. Delete the consumer only if it owns nothing:
-- DELCONSUMER drops its pending entries, which would lose them.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """A stream entry handed to this consumer, with how often it has been delivered."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int


def connect(url: str, *, block_ms: int = 2000) -> redis.Redis:
    """A sync client whose socket timeout outlasts a blocking read."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=block_ms / 1000 + 10,
        socket_connect_timeout=3,
        health_check_interval=30,
    )


class ReportQueue:
    """The report stream as one consumer sees it."""

    def __init__(self, client: redis.Redis, keys: Keys, consumer: str) -> None:
        # redis-py annotates replies as bytes | str; with decode_responses=True they are str.
        self.client: Any = client
        self.keys = keys
        self.consumer = consumer
        self._finish = self.client.register_script(FINISH_LUA)
        self._dead = self.client.register_script(DEAD_LETTER_LUA)
        self._renew = self.client.register_script(RENEW_LUA)
        self._claim_name = self.client.register_script(_CLAIM_NAME_LUA)
        self._forget = self.client.register_script(_FORGET_CONSUMER_LUA)

    @staticmethod
    def call(op: Callable[[], T]) -> T:
        """Run one Redis operation, translating connection trouble."""
        try:
            return op()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise ServiceUnavailableError(f"Redis unreachable: {exc}") from exc
        except redis.exceptions.ResponseError as exc:
            # Redis loading its AOF, out of memory, a replica after failover, the stream or
            # group deleted under us: wait and retry, like a dropped connection.
            transient = ("LOADING", "MISCONF", "OOM", "BUSY ", "TRYAGAIN", "READONLY", "NOGROUP")
            if str(exc).startswith(transient):
                raise ServiceUnavailableError(f"Redis cannot serve: {exc}") from exc
            raise

    # -- group and consumer identity -------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the group at id 0 with MKSTREAM, so nothing queued earlier is skipped."""
        try:
            self.call(
                lambda: self.client.xgroup_create(
                    self.keys.stream, self.keys.group, "0", mkstream=True
                )
            )
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def heartbeat(self, token: str, ttl_ms: int, **fields: str) -> bool:
        """Hold this consumer's name (False: another live process holds it) and beat."""
        keys = [self.keys.consumer(self.consumer), self.keys.consumers]
        args: list[str | int] = [token, ttl_ms, int(time.time()), self.consumer, *flatten(fields)]
        return bool(self.call(lambda: self._claim_name(keys=keys, args=args)))

    def release_name(self, token: str) -> None:
        """Give the name back (only if we hold it) and drop our heartbeat."""
        key = self.keys.consumer(self.consumer)

        def release() -> None:
            if self.client.hget(key, "token") == token:
                self.client.delete(key)
            self.client.zrem(self.keys.consumers, self.consumer)

        self.call(release)

    # -- reading -----------------------------------------------------------------------------

    def _read(self, start: str, block_ms: int | None) -> Entry | None:
        reply: Any = self.call(
            lambda: self.client.xreadgroup(
                self.keys.group, self.consumer, {self.keys.stream: start}, count=1, block=block_ms
            )
        )
        if not reply:
            return None
        entry_id, fields = reply[0][1][0] if reply[0][1] else (None, None)
        if entry_id is None:
            return None
        deliveries = 1 if start == ">" else self.deliveries(entry_id)
        return Entry(entry_id, fields or {}, deliveries)

    def read_new(self, block_ms: int) -> Entry | None:
        """The next undelivered entry (COUNT 1: no prefetch), waiting up to ``block_ms``."""
        return self._read(">", block_ms)

    def read_own_pending(self, after: str) -> Entry | None:
        """The next entry of this consumer's own pending list after ``after`` (``"0"``: first)."""
        return self._read(after, None)

    def deliveries(self, entry_id: str) -> int:
        """How many times the entry was delivered (XPENDING extended form)."""
        rows = self.call(
            lambda: self.client.xpending_range(
                self.keys.stream, self.keys.group, entry_id, entry_id, 1
            )
        )
        return int(rows[0]["times_delivered"]) if rows else 0

    def reclaim(self, cursor: str, min_idle_ms: int) -> tuple[str, Entry | None, list[str]]:
        """One XAUTOCLAIM step (COUNT 1): next cursor, the entry claimed, ids found deleted."""
        reply: Any = self.call(
            lambda: self.client.execute_command(
                "XAUTOCLAIM",
                self.keys.stream,
                self.keys.group,
                self.consumer,
                min_idle_ms,
                cursor,
                "COUNT",
                1,
            )
        )
        next_cursor, claimed = str(reply[0]), reply[1]
        deleted = [str(i) for i in reply[2]] if len(reply) > 2 else []
        entry = None
        for entry_id, fields in claimed:
            if fields is None:  # Redis 6.2 reports deleted entries inline
                deleted.append(entry_id)
            else:
                entry = Entry(entry_id, fields, self.deliveries(entry_id))
        return next_cursor, entry, deleted

    # -- leases ------------------------------------------------------------------------------

    def renew(self, entry_id: str, idle_ms: int = 0) -> int:
        """Set the idle time of our entry: 1 done, 0 another consumer owns it, -1 it was deleted."""
        keys = [self.keys.stream]
        args: list[str | int] = [self.keys.group, self.consumer, entry_id, idle_ms]
        return int(self.call(lambda: self._renew(keys=keys, args=args)))

    def hand_back(self, entry_id: str, lease_ms: int) -> bool:
        """Mark our entry idle for a whole lease, so another consumer reclaims it at once."""
        return self.renew(entry_id, idle_ms=lease_ms) == 1

    def uptime_s(self) -> float:
        """Seconds since the Redis server started."""
        info = self.call(lambda: self.client.info("server"))
        return float(info.get("uptime_in_seconds", 0))

    # -- the job hash --------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, str]:
        """The job hash (empty if it does not exist)."""
        return self.call(lambda: self.client.hgetall(self.keys.job(job_id)))

    def job_for_entry(self, entry_id: str) -> str | None:
        """The job id an unacked entry belongs to (from the entry index)."""
        job_id = self.call(lambda: self.client.hget(self.keys.index, entry_id))
        return str(job_id) if job_id else None

    def update_job(self, job_id: str, **fields: str) -> None:
        """Set fields of the job hash."""
        self.call(lambda: self.client.hset(self.keys.job(job_id), mapping=fields))

    def start_attempt(self, job_id: str, **fields: str) -> int:
        """Mark the job processing and count the attempt; returns the attempt number."""
        key = self.keys.job(job_id)

        def start() -> int:
            pipe = self.client.pipeline(transaction=True)
            pipe.hincrby(key, "attempts", 1)
            pipe.hset(key, mapping={"status": Status.PROCESSING.value, **fields})
            return int(pipe.execute()[0])

        return self.call(start)

    def history_with(self, job_id: str, error: AttemptError) -> str:
        """The job's error history with ``error`` appended, encoded for the hash."""
        return encode_errors([*decode_errors(self.job(job_id).get("errors")), error])

    def add_error(self, job_id: str, error: AttemptError, status: Status) -> None:
        """Append to the job's error history and set its status and last error."""
        history = self.history_with(job_id, error)
        self.update_job(job_id, status=status.value, error=error.error, errors=history)

    # -- outcomes ----------------------------------------------------------------------------

    def finish(self, entry_id: str, job_id: str | None, ttl_s: int, **fields: str) -> bool:
        """Record the outcome unless the job is finished already, and XACK: one step."""
        keys = [self.keys.stream, self.keys.job(job_id or "-"), self.keys.index]
        args: list[str | int] = [self.keys.group, entry_id, ttl_s, *flatten(fields)]
        return bool(self.call(lambda: self._finish(keys=keys, args=args)))

    def dead_letter(
        self, entry_id: str, job_id: str | None, ttl_s: int, dead: dict[str, str], **fields: str
    ) -> str:
        """Copy the entry to the dead letters, mark the job dead and XACK, atomically."""
        keys = [self.keys.stream, self.keys.dead, self.keys.job(job_id or "-"), self.keys.index]
        items = flatten(dead)
        args: list[str | int] = [self.keys.group, entry_id, ttl_s, len(items), *items]
        args += flatten(fields)
        return str(self.call(lambda: self._dead(keys=keys, args=args)))

    # -- housekeeping ----------------------------------------------------------------------------

    def trim(self, retention_s: int, lock_s: int) -> int | None:
        """XTRIM MINID below every pending or undelivered entry (and the retention window).

        Runs on one consumer per ``lock_s``; returns the number of entries removed, or None
        when another consumer holds the turn.
        """

        def run() -> int | None:
            if not self.client.set(self.keys.trim_lock, self.consumer, nx=True, ex=lock_s):
                return None
            # Keep acked entries of the last ``retention_s`` for inspection (0: keep none).
            floor = (
                f"{int((time.time() - retention_s) * 1000)}-0"
                if retention_s
                else "18446744073709551615-0"
            )
            groups: list[dict[str, Any]] = self.client.xinfo_groups(self.keys.stream)
            if not groups:
                return 0
            for group in groups:
                summary: Any = self.client.xpending(self.keys.stream, group["name"])
                if summary["pending"]:
                    floor = min(floor, summary["min"], key=_id_key)
                floor = min(floor, next_id(group["last-delivered-id"]), key=_id_key)
            removed = self.client.xtrim(self.keys.stream, minid=floor, approximate=False)
            return int(removed)

        return self.call(run)

    def forget_idle_consumers(self, idle_ms: int, heartbeat_before_s: float) -> list[str]:
        """Delete consumer names that own nothing and have not beaten since the given time."""

        def run() -> list[str]:
            removed = []
            for info in self.client.xinfo_consumers(self.keys.stream, self.keys.group):
                name = info["name"]
                if info["pending"] or info["idle"] < idle_ms or name == self.consumer:
                    continue
                beat = self.client.zscore(self.keys.consumers, name)
                if beat is not None and beat >= heartbeat_before_s:
                    continue
                if self._forget(keys=[self.keys.stream], args=[self.keys.group, name]) == 0:
                    removed.append(name)
                    self.client.zrem(self.keys.consumers, name)
            return removed

        return self.call(run)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def error_record(attempt: int, consumer: str, error: str, *, transient: bool) -> AttemptError:
    """An ``AttemptError`` stamped now."""
    return AttemptError(
        attempt=attempt, at=now_iso(), consumer=consumer, error=error, transient=transient
    )
