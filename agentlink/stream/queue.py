"""A consumer's operations on the report stream, and the one place it touches redis-py.

Redis exceptions become ``ServiceUnavailableError`` here, so the consumer loop reasons only
about our own error tree. Multi-key changes go through the Lua scripts of
``agentlink.stream.scripts`` (atomic, one AOF record each).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.exceptions

from agentlink.errors import ServiceUnavailableError
from agentlink.jobs import (
    AttemptError,
    JobEvent,
    Status,
    decode_errors,
    encode_errors,
    encode_event,
)
from agentlink.observe.capacity import work_key
from agentlink.stream.encoding import flatten, next_id, now_iso
from agentlink.stream.keys import Keys
from agentlink.stream.scripts import DEAD_LETTER_LUA, FINISH_LUA, RENEW_LUA, UPDATE_UNFINISHED_LUA

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

_TAKE_OVER_NAME_LUA = """
-- KEYS: consumer hash. ARGV: token of a holder found dead. Compare-and-delete, so a
-- holder that beat in between (it was alive after all) keeps its name.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_FORGET_CONSUMER_LUA = """
-- KEYS: stream. ARGV: group, consumer. Delete the consumer only if it owns nothing:
-- DELCONSUMER drops its pending entries, which would lose them.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


_EVENT_LUA = """
-- KEYS: job hash. ARGV: event JSON, cap, mode, guard field, guard value.
-- Appends one event to the job's timeline (the hash's `events` JSON array, so it expires
-- with the job), keeping the newest `cap`. Nothing is written for a job that does not
-- exist, nor (with a guard field) unless that field holds the guard value: an outcome's
-- event is added only if this consumer's outcome is the one recorded.
-- mode 'renewal': skipped once the job is finished; folds into the previous event when
-- that is a renewal by the same consumer (count + 1, newest time).
-- mode 'attempt': the event's attempt is the hash's `attempts` (counted in the same MULTI).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], ARGV[4]) ~= ARGV[5] then return 0 end
local event = cjson.decode(ARGV[1])
local events = {}
local raw = redis.call('HGET', KEYS[1], 'events')
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then events = decoded end
end
if ARGV[3] == 'renewal' then
  local status = redis.call('HGET', KEYS[1], 'status')
  if status == 'completed' or status == 'failed' or status == 'dead' then return 0 end
  local last = events[#events]
  if last and last['event'] == event['event'] and last['consumer'] == event['consumer'] then
    last['at'] = event['at']
    last['count'] = (tonumber(last['count']) or 1) + 1
    redis.call('HSET', KEYS[1], 'events', cjson.encode(events))
    return 1
  end
elseif ARGV[3] == 'attempt' then
  event['attempt'] = tonumber(redis.call('HGET', KEYS[1], 'attempts'))
end
events[#events + 1] = event
while #events > tonumber(ARGV[2]) do table.remove(events, 1) end
redis.call('HSET', KEYS[1], 'events', cjson.encode(events))
return 1
"""

TIMELINE_CAP = 50
"""Events kept per job; renewals fold into one, so a normal job has fewer than ten."""


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
        self._update_unfinished = self.client.register_script(UPDATE_UNFINISHED_LUA)
        self._take_over = self.client.register_script(_TAKE_OVER_NAME_LUA)
        self._forget = self.client.register_script(_FORGET_CONSUMER_LUA)
        self._event = self.client.register_script(_EVENT_LUA)

    @staticmethod
    def call(op: Callable[[], T]) -> T:
        """Run one Redis operation, translating connection trouble."""
        try:
            return op()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise ServiceUnavailableError(f"Redis unreachable: {exc}") from exc
        except (
            redis.exceptions.BusyLoadingError,
            redis.exceptions.OutOfMemoryError,
            redis.exceptions.ReadOnlyError,
            redis.exceptions.TryAgainError,
        ) as exc:
            # Redis loading its AOF, out of memory, a replica after failover: wait and retry.
            # (redis-py strips these codes from the message, so match the class.)
            raise ServiceUnavailableError(f"Redis cannot serve: {exc}") from exc
        except redis.exceptions.ResponseError as exc:
            # Errors redis-py has no class for keep their code: a failed fsync, a busy
            # script, the stream or group deleted under us.
            if str(exc).startswith(("MISCONF", "BUSY ", "NOGROUP")):
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

    def name_holder(self) -> dict[str, str]:
        """Who holds this consumer's name: token, host and pid of its last heartbeat."""
        key = self.keys.consumer(self.consumer)
        token, host, pid = self.call(lambda: self.client.hmget(key, ["token", "host", "pid"]))
        return {"token": token or "", "host": host or "", "pid": pid or ""}

    def take_over_name(self, dead_token: str) -> bool:
        """Drop the name lock of a holder known to be dead, if it is still that holder's."""
        key = self.keys.consumer(self.consumer)
        return bool(self.call(lambda: self._take_over(keys=[key], args=[dead_token])))

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

    def update_job(self, job_id: str, /, **fields: str) -> None:
        """Set fields of the job hash."""
        self.call(lambda: self.client.hset(self.keys.job(job_id), mapping=fields))

    def start_attempt(self, job_id: str, *, event: JobEvent | None = None, **fields: str) -> int:
        """Mark the job processing and count the attempt; returns the attempt number.

        ``event`` (``claimed``) joins the timeline in the same MULTI, stamped with the
        attempt number counted there.
        """
        key = self.keys.job(job_id)

        items = flatten({"status": Status.PROCESSING.value, **fields})

        def start() -> int:
            pipe = self.client.pipeline(transaction=True)
            self._update_unfinished(keys=[key], args=[1, *items], client=pipe)
            if event is not None:
                guard = ("started_at", fields["started_at"]) if "started_at" in fields else ("", "")
                self._append_event(pipe, job_id, event, mode="attempt", guard=guard)
            return int(pipe.execute()[0])

        return self.call(start)

    def _append_event(
        self,
        client: Any,
        job_id: str,
        event: JobEvent,
        *,
        mode: str = "",
        guard: tuple[str, str] = ("", ""),
    ) -> Any:
        """Queue (on a pipeline) or run the timeline script for one event."""
        args: list[str | int] = [encode_event(event), TIMELINE_CAP, mode, *guard]
        return self._event(keys=[self.keys.job(job_id)], args=args, client=client)

    def event(self, job_id: str, event: JobEvent, *, renewal: bool = False) -> bool:
        """Add ``event`` to the job's timeline (a renewal folds into the previous one)."""
        mode = "renewal" if renewal else ""
        return bool(self.call(lambda: self._append_event(self.client, job_id, event, mode=mode)))

    def record_work(self, busy_s: float, *, finished: bool) -> None:
        """Add one job's busy time (and, if it reached an outcome, the job) to the counters
        behind the service time of the scaling gauges (``agentlink.observe.capacity``)."""
        key = work_key(self.keys)

        def record() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.hincrbyfloat(key, "busy_s", round(busy_s, 3))
            if finished:
                pipe.hincrby(key, "done", 1)
            pipe.execute()

        self.call(record)

    def history_with(self, job_id: str, error: AttemptError) -> str:
        """The job's error history with ``error`` appended, encoded for the hash."""
        return encode_errors([*decode_errors(self.job(job_id).get("errors")), error])

    def add_error(
        self, job_id: str, error: AttemptError, status: Status, *, event: JobEvent | None = None
    ) -> None:
        """Append to the job's error history and set its status and last error (with
        ``event`` added to the timeline in the same MULTI)."""
        history = self.history_with(job_id, error)
        self.update_unfinished(
            job_id, event=event, status=status.value, error=error.error, errors=history
        )

    def update_unfinished(
        self, job_id: str, *, event: JobEvent | None = None, **fields: str
    ) -> bool:
        """Set fields of a job that has no outcome yet (False: it has one; nothing written),
        with ``event`` on the timeline in the same MULTI."""
        key = self.keys.job(job_id)
        args: list[str | int] = [0, *flatten(fields)]

        def write() -> bool:
            pipe = self.client.pipeline(transaction=True)
            self._update_unfinished(keys=[key], args=args, client=pipe)
            if event is not None:
                # Only onto the timeline if the write above happened.
                field = "errors" if "errors" in fields else "status"
                self._append_event(pipe, job_id, event, guard=(field, fields.get(field, "")))
            return int(pipe.execute()[0]) >= 0

        return bool(self.call(write))

    # -- outcomes ----------------------------------------------------------------------------

    def finish(
        self,
        entry_id: str,
        job_id: str | None,
        ttl_s: int,
        *,
        event: JobEvent | None = None,
        **fields: str,
    ) -> bool:
        """Record the outcome unless the job is finished already, and XACK: one step.

        ``event`` joins the timeline in the same MULTI, only if this outcome was the one
        recorded (its ``finished_at`` is in the hash).
        """
        keys = [self.keys.stream, self.keys.job(job_id or "-"), self.keys.index]
        keys += [self.keys.callbacks.stream, self.keys.service_stats]  # outcome hooks
        args: list[str | int] = [self.keys.group, entry_id, ttl_s, *flatten(fields)]
        if event is None or job_id is None or "finished_at" not in fields:
            return bool(self.call(lambda: self._finish(keys=keys, args=args)))

        def run() -> bool:
            pipe = self.client.pipeline(transaction=True)
            self._finish(keys=keys, args=args, client=pipe)
            guard = ("finished_at", fields["finished_at"])
            self._append_event(pipe, job_id, event, guard=guard)
            return bool(pipe.execute()[0])

        return self.call(run)

    def dead_letter(
        self,
        entry_id: str,
        job_id: str | None,
        ttl_s: int,
        dead: dict[str, str],
        *,
        event: JobEvent | None = None,
        **fields: str,
    ) -> str:
        """Copy the entry to the dead letters, mark the job dead and XACK, atomically (with
        ``event`` on the timeline, in the same MULTI)."""
        keys = [self.keys.stream, self.keys.dead, self.keys.job(job_id or "-"), self.keys.index]
        keys.append(self.keys.callbacks.stream)  # the outcome's callback, if any
        items = flatten(dead)
        args: list[str | int] = [self.keys.group, entry_id, ttl_s, self.consumer, len(items)]
        args += items
        args += flatten(fields)
        if event is None or job_id is None or "finished_at" not in fields:
            return str(self.call(lambda: self._dead(keys=keys, args=args)))

        def run() -> str:
            pipe = self.client.pipeline(transaction=True)
            self._dead(keys=keys, args=args, client=pipe)
            guard = ("finished_at", fields["finished_at"])
            self._append_event(pipe, job_id, event, guard=guard)
            return str(pipe.execute()[0])

        return self.call(run)

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
