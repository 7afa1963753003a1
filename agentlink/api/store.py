"""The API's view of Redis: enqueue a job, read a job, the queue's backlog, rate limits.

This is the adapter between the API and redis-py: Redis exceptions become
``ServiceUnavailableError`` here and nowhere else.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from agentlink.errors import JobNotFoundError, ServiceUnavailableError
from agentlink.jobs import JobRecord, ReportSpec, entry_fields, new_job_fields, record_from_hash
from agentlink.streams import (
    BACKLOG_LUA,
    ENQUEUE_LUA,
    POSITION_LUA,
    RATE_LIMIT_LUA,
    Keys,
    flatten,
    now_iso,
)

T = TypeVar("T")

MEMORY_CACHE_S = 2.0
"""How long one ``INFO memory`` answer is trusted: the high-water check costs no round trip
per request, and memory does not jump in two seconds."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A job just queued: its ids and how many entries are ahead of it."""

    job_id: str
    entry_id: str
    position: int


@dataclass(frozen=True, slots=True)
class Existing:
    """An idempotency key already used: the job it created and that request's body hash."""

    job_id: str
    body_sha256: str


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """Where one idempotency key is recorded, and the hash of this request's body."""

    redis_key: str
    body_sha256: str
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """The queue as a wait estimate sees it."""

    undelivered: int
    pending: int
    service_s: float | None
    """Moving average of completed jobs' service time (None before the first)."""
    consumers: int
    """Consumers that sent a heartbeat within the last two leases."""

    @property
    def ahead(self) -> int:
        """Entries a job queued now would find ahead of it."""
        return self.undelivered + self.pending


@dataclass(frozen=True, slots=True)
class MemoryUse:
    """Redis memory, from ``INFO memory``."""

    used_bytes: int
    max_bytes: int

    @property
    def fraction(self) -> float | None:
        """Used / maxmemory; None when Redis has no maxmemory."""
        return self.used_bytes / self.max_bytes if self.max_bytes else None


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One rate-limit check."""

    allowed: bool
    retry_after_s: float
    remaining: int


class JobStore:
    """Enqueues and reads jobs for the API."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._enqueue = client.register_script(ENQUEUE_LUA)
        self._position = client.register_script(POSITION_LUA)
        self._backlog = client.register_script(BACKLOG_LUA)
        self._rate = client.register_script(RATE_LIMIT_LUA)
        self._group_ready = False
        self._memory: tuple[float, MemoryUse] | None = None
        self.memory_cache_s = MEMORY_CACHE_S

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise ServiceUnavailableError(
                "the job queue (Redis) is unreachable; try again shortly"
            ) from exc
        except (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError) as exc:
            # redis-py strips the OOM / READONLY prefix from these messages; name it again.
            code = "OOM" if isinstance(exc, redis.exceptions.OutOfMemoryError) else "READONLY"
            raise ServiceUnavailableError(
                f"the job queue cannot accept work ({code}: {exc}); try again later"
            ) from exc
        except redis.exceptions.ResponseError as exc:
            if "OOM" in str(exc) or "MISCONF" in str(exc):
                raise ServiceUnavailableError(f"the job queue cannot accept work: {exc}") from exc
            raise

    async def ensure_group(self) -> None:
        """Create the consumer group at id 0 (MKSTREAM) unless it exists."""
        try:
            await self._call(
                lambda: self.client.xgroup_create(
                    self.keys.stream, self.keys.group, id="0", mkstream=True
                )
            )
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def enqueue(
        self,
        spec: ReportSpec,
        *,
        request_id: str | None = None,
        idempotency: IdempotencyKey | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted | Existing:
        """Write the job hash and XADD the entry in one atomic step.

        With ``idempotency``, the same step first looks the key up: if it was used already
        nothing is queued and the earlier job comes back as ``Existing``.
        """
        if not self._group_ready:
            await self.ensure_group()
        job_id = str(uuid.uuid4())
        now = now_iso()
        entry = flatten(entry_fields(job_id, spec, now))
        job = flatten(
            new_job_fields(
                job_id, spec, now, request_id=request_id, idempotency_key=idempotency_key
            )
        )
        keys = [self.keys.stream, self.keys.job(job_id), self.keys.index]
        args: list[str | int] = [self.keys.group, 0, "", len(entry), *entry, *job]
        if idempotency is not None:
            keys.append(idempotency.redis_key)
            args[1:3] = [idempotency.ttl_s, idempotency.body_sha256]
        reply: list[Any] = await self._call(lambda: self._enqueue(keys=keys, args=args))
        if reply[0] == "duplicate":
            return Existing(job_id=str(reply[1]), body_sha256=str(reply[2]))
        return Accepted(job_id=job_id, entry_id=str(reply[1]), position=int(reply[2]))

    async def existing(self, redis_key: str) -> Existing | None:
        """The job an idempotency key created, if it was used within its lifetime."""
        job_id, body = await self._call(
            lambda: self.client.hmget(redis_key, ["job_id", "body_sha256"])
        )
        return Existing(job_id=str(job_id), body_sha256=str(body or "")) if job_id else None

    async def get(self, job_id: str) -> JobRecord:
        """The job's record; ``JobNotFoundError`` if there is none."""
        fields: dict[str, str] = await self._call(
            lambda: self.client.hgetall(self.keys.job(job_id))  # type: ignore[arg-type,return-value]
        )
        if not fields.get("status"):
            raise JobNotFoundError(job_id)
        return record_from_hash(fields)

    async def position(self, entry_id: str) -> int:
        """Entries ahead of a queued entry (0 once a consumer has it)."""
        keys = [self.keys.stream]
        args = [self.keys.group, entry_id]
        return int(await self._call(lambda: self._position(keys=keys, args=args)))

    async def entry_of(self, job_id: str) -> str:
        """The stream entry id of a job ("" if unknown)."""
        entry = await self._call(lambda: self.client.hget(self.keys.job(job_id), "entry_id"))
        return str(entry or "")

    async def backlog(self, live_within_s: float) -> Backlog:
        """Undelivered and pending entries, the service-time average and live consumers."""
        keys = [self.keys.stream, self.keys.service_stats, self.keys.consumers]
        args: list[str | float] = [self.keys.group, int(time.time() - live_within_s)]
        undelivered, pending, service, consumers = await self._call(
            lambda: self._backlog(keys=keys, args=args)
        )
        return Backlog(
            undelivered=int(undelivered),
            pending=int(pending),
            service_s=float(service) if service else None,
            consumers=int(consumers),
        )

    async def memory(self) -> MemoryUse:
        """Redis memory use, cached for ``memory_cache_s``."""
        now = time.monotonic()
        if self._memory is not None and now - self._memory[0] < self.memory_cache_s:
            return self._memory[1]
        info: dict[str, Any] = await self._call(lambda: self.client.info("memory"))
        use = MemoryUse(
            used_bytes=int(info.get("used_memory", 0)), max_bytes=int(info.get("maxmemory", 0))
        )
        self._memory = (now, use)
        return use

    async def rate_limit(self, scope: str, limit: int, window_s: float) -> RateDecision:
        """Count one request of ``scope`` against ``limit`` per ``window_s`` (shared by all
        API processes: the state lives in Redis)."""
        keys = [self.keys.rate(scope)]
        args = [limit, int(window_s * 1000)]
        allowed, retry_ms, remaining = await self._call(lambda: self._rate(keys=keys, args=args))
        return RateDecision(
            allowed=bool(allowed), retry_after_s=int(retry_ms) / 1000, remaining=int(remaining)
        )

    async def ping(self) -> bool:
        """True if Redis answers."""
        return bool(await self._call(self.client.ping))


@asynccontextmanager
async def open_store(redis_url: str, keys: Keys) -> AsyncIterator[JobStore]:
    """A store on a fresh connection pool, closed on exit."""
    client: aioredis.Redis = aioredis.from_url(
        redis_url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
    )
    store = JobStore(client, keys)
    try:
        # Without Redis the API still starts, answers 503 and creates the group later.
        with contextlib.suppress(ServiceUnavailableError):
            await store.ensure_group()
        yield store
    finally:
        await client.aclose()
