"""The API's view of Redis: one round trip to take a request, one to read a job.

The API process (its routes, the dashboard, the ``/metrics`` reading) talks to Redis
through this store, which runs every call through the Redis seam's translator
(``agentlink.stream.connection``): Redis's exceptions come out as
``ServiceUnavailableError`` or ``RedisCommandError``, and a wait for a pooled connection
that runs out as ``ServiceBusyError``.

The connection pool is bounded (``AGENTLINK_REDIS_POOL_SIZE`` per API process) and a
request *waits* for a free connection, up to ``AGENTLINK_REDIS_POOL_WAIT_S``: a burst of
thousands of requests queues up in the process instead of being refused. A wait that runs
out is "busy" (503 + Retry-After), never "unreachable".

What changes slowly — the service-time average, the live consumers, Redis memory — is read
at most once per ``AGENTLINK_API_CACHE_S`` per process (one pipelined round trip, shared by
every request that arrives meanwhile), not once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from agentlink.api.submission import (
    Accepted,
    Conditions,
    Existing,
    Full,
    IdempotencyKey,
    Limited,
    RateLimit,
    Submission,
)
from agentlink.errors import JobNotFoundError, ServiceBusyError, ServiceUnavailableError
from agentlink.jobs import JobRecord, ReportSpec, entry_fields, new_job_fields, record_from_hash
from agentlink.stream.batch import ScriptBatcher
from agentlink.stream.connection import (
    COMMAND_TIMEOUT_S,
    call_async,
    connect_async,
    ensure_group_async,
    translate,
)
from agentlink.stream.encoding import now_iso
from agentlink.stream.keys import Keys
from agentlink.stream.lua import source
from agentlink.stream.records import cancel_call

T = TypeVar("T")

_json = msgspec.json.Encoder()


class JobStore:
    """Takes report requests and reads jobs for the API, over a bounded, waiting pool."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        *,
        pool_size: int,
        pool_wait_s: float,
        cache_s: float,
        live_within_s: float,
    ) -> None:
        self.client = client
        self.keys = keys
        self.pool_wait_s = pool_wait_s
        self.cache_s = cache_s
        self.live_within_s = live_within_s
        self._slots = asyncio.Semaphore(pool_size)
        self._submit = client.register_script(source("submit.lua"))
        self._read = client.register_script(source("read_job.lua"))
        self._rate = client.register_script(source("rate.lua"))
        self._cancel = client.register_script(source("cancel.lua"))
        self._batch = ScriptBatcher(client, pool_wait_s, COMMAND_TIMEOUT_S, translate)
        self._group_ready = False
        self._conditions: Conditions | None = None
        self._reading: asyncio.Task[Conditions] | None = None
        self.last_ok = 0.0
        """``time.monotonic()`` of the last Redis reply: /health needs no round trip while
        requests are being answered."""

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation on a pooled connection, translating Redis's errors."""
        try:
            if self._slots.locked():  # every connection in use: wait, with a deadline
                async with asyncio.timeout(self.pool_wait_s):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceBusyError(
                f"the API is busy: no Redis connection came free within {self.pool_wait_s:g} s"
                "; retry shortly"
            ) from None
        try:
            reply = await call_async(op)
        finally:
            self._slots.release()
        self.last_ok = time.monotonic()
        return reply

    async def run(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` (the dashboard's reads and actions, the ``/metrics`` reading) on a
        pooled connection, Redis's errors translated: it waits for a connection like every
        request does."""
        return await self._call(op)

    async def _script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run one of the request scripts, in a round trip shared with concurrent requests
        (``agentlink.stream.batch``)."""
        reply = await self._batch.call(script.sha, script.script, keys, args)
        self.last_ok = time.monotonic()
        return reply

    def close(self) -> None:
        """Stop the shared round trips (queued calls are answered busy)."""
        self._batch.close()

    async def ensure_group(self) -> None:
        """Create the consumer group at id 0 (MKSTREAM) unless it exists."""
        await ensure_group_async(self.client, self.keys)
        self._group_ready = True

    async def conditions(self) -> Conditions:
        """The service time, live consumers and memory, read at most once per ``cache_s``;
        requests arriving while a read is under way share it."""
        known = self._conditions
        if known is not None and time.monotonic() - known.read_at < self.cache_s:
            return known
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read_conditions())
        return await asyncio.shield(self._reading)

    async def _read_conditions(self) -> Conditions:
        since = int(time.time() - self.live_within_s)

        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(self.keys.service_stats, "ewma_s")
            pipe.zcount(self.keys.consumers, since, "+inf")
            pipe.info("memory")
            return await pipe.execute()

        service, consumers, memory = await self._call(read)
        self._conditions = Conditions(
            service_s=float(service) if service else None,
            consumers=int(consumers),
            memory_used_bytes=int(memory.get("used_memory", 0)),
            memory_max_bytes=int(memory.get("maxmemory", 0)),
            read_at=time.monotonic(),
        )
        return self._conditions

    async def enqueue(
        self,
        spec: ReportSpec,
        *,
        rate: RateLimit | None = None,
        idempotency: IdempotencyKey | None = None,
        max_ahead: int = -1,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
    ) -> Accepted | Existing | Limited | Full:
        """Queue a new job for ``spec`` (``submit`` with a fresh job id, the stream entry and
        the job record built from it); no rate limit or backpressure unless given."""
        job_id = str(uuid.uuid4())
        created_at = now_iso()
        return await self.submit(
            Submission(
                job_id=job_id,
                created_at=created_at,
                entry=entry_fields(job_id, spec, created_at, owner=owner, request_id=request_id),
                job=new_job_fields(
                    job_id,
                    spec,
                    created_at,
                    request_id=request_id,
                    idempotency_key=idempotency_key,
                    owner=owner,
                ),
                rate=rate or RateLimit(redis_key=self.keys.rate("unlimited"), limit=0, window_s=1),
                idempotency=idempotency,
                max_ahead=max_ahead,
            )
        )

    async def submit(self, submission: Submission) -> Accepted | Existing | Limited | Full:
        """Rate limit, idempotency, backpressure and enqueue, in one atomic script."""
        if not self._group_ready:
            await self.ensure_group()
        idem = submission.idempotency
        keys = [
            self.keys.stream,
            self.keys.job(submission.job_id),
            self.keys.index,
            submission.rate.redis_key,
            idem.redis_key if idem else self.keys.idempotency("none", "none", "none"),
        ]
        options = {
            "group": self.keys.group,
            "job_id": submission.job_id,
            "created_at": submission.created_at,
            "created_ms": int(submission.job["created_ms"]),
            "state": submission.job["state"],
            "suburb": submission.job["suburb"].lower(),
            "idx": self.keys.indexes,
            "job_prefix": self.keys.job(""),
            "rate_limit": submission.rate.limit,
            "rate_period_ms": int(submission.rate.window_s * 1000),
            "idem_ttl_s": idem.ttl_s if idem else 0,
            "body_sha256": idem.body_sha256 if idem else "",
            "max_ahead": submission.max_ahead,
        }
        args = [_json.encode(options), _flat_json(submission.entry), _flat_json(submission.job)]
        reply: list[Any] = await self._script(self._submit, keys, args)
        verdict = reply[0]
        if verdict == "queued":
            return Accepted(job_id=submission.job_id, entry_id=str(reply[1]), ahead=int(reply[2]))
        if verdict == "duplicate":
            return Existing(
                job_id=str(reply[1]),
                body_sha256=str(reply[2]),
                status=str(reply[3]) or None,
                ahead=int(reply[4]),
            )
        if verdict == "limited":
            return Limited(retry_after_s=int(reply[1]) / 1000)
        return Full(ahead=int(reply[1]))

    async def existing(self, redis_key: str) -> Existing | None:
        """The job an idempotency key created (read only; its position is not computed)."""
        job_id, body = await self._call(
            lambda: self.client.hmget(redis_key, ["job_id", "body_sha256"])
        )
        if not job_id:
            return None
        status = await self._call(lambda: self.client.hget(self.keys.job(str(job_id)), "status"))
        return Existing(
            job_id=str(job_id),
            body_sha256=str(body or ""),
            status=str(status or "") or None,
            ahead=0,
        )

    async def read(self, job_id: str, *, owner: str, rate: RateLimit) -> JobRecord | Limited:
        """The job's record if ``owner`` may see it (``""``: any job); ``JobNotFoundError``
        otherwise. Counts the request against ``rate`` in the same round trip."""
        options = _json.encode(
            {
                "rate_limit": rate.limit,
                "rate_period_ms": int(rate.window_s * 1000),
                "owner": owner,
            }
        )
        keys = [self.keys.job(job_id), rate.redis_key]
        reply: list[Any] = await self._script(self._read, keys, [options])
        if reply[0] == "limited":
            return Limited(retry_after_s=int(reply[1]) / 1000)
        if reply[0] == "missing":
            raise JobNotFoundError(job_id)
        flat = reply[1:]
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        if not fields.get("status"):
            raise JobNotFoundError(job_id)
        return record_from_hash(fields)

    async def cancel(self, job_id: str, *, owner: str, ttl_s: int, by: str) -> tuple[str, str]:
        """Cancel ``job_id`` if ``owner`` may (``""``: any job); ``by`` names who asked.
        Returns ``lua/cancel.lua``'s verdict (``records.CANCEL_VERDICTS``) and the status."""
        call = cancel_call(self.keys, job_id, owner=owner, ttl_s=ttl_s, by=by)
        verdict, status = await self._script(self._cancel, call.keys, [call.options])
        return str(verdict), str(status)

    async def count(
        self, redis_key: str, limit: int, window_s: float, *, peek: bool = False
    ) -> Limited | None:
        """Count one event (a failed authentication) against ``limit`` per ``window_s``; with
        ``peek``, count nothing and answer what one more event would get."""
        options = _json.encode({"limit": limit, "period_ms": int(window_s * 1000), "peek": peek})
        allowed, retry_ms, _ = await self._call(
            lambda: self._rate(keys=[redis_key], args=[options])
        )
        return None if int(allowed) else Limited(retry_after_s=int(retry_ms) / 1000)

    async def ping(self) -> bool:
        """True if Redis answers."""
        return bool(await self._call(self.client.ping))


def _flat_json(fields: dict[str, str]) -> bytes:
    """``{"a": "1"}`` -> ``["a","1"]`` as JSON: a script's field/value list."""
    return _json.encode([item for pair in fields.items() for item in pair])


@asynccontextmanager
async def open_store(
    redis_url: str,
    keys: Keys,
    *,
    pool_size: int = 32,
    pool_wait_s: float = 10.0,
    cache_s: float = 2.0,
    live_within_s: float = 30.0,
) -> AsyncIterator[JobStore]:
    """A store on a fresh, bounded connection pool, closed on exit."""
    # + 1: the connection the request scripts share (agentlink.stream.batch). The store's
    # semaphore does the waiting for the others, with its own deadline.
    client = connect_async(redis_url, max_connections=pool_size + 1)
    store = JobStore(
        client,
        keys,
        pool_size=pool_size,
        pool_wait_s=pool_wait_s,
        cache_s=cache_s,
        live_within_s=live_within_s,
    )
    try:
        # Without Redis the API still starts, answers 503 and creates the group later.
        with contextlib.suppress(ServiceUnavailableError):
            await store.ensure_group()
        yield store
    finally:
        store.close()
        await client.aclose()
        await client.connection_pool.disconnect()
