"""The API's view of Redis: enqueue a job, read a job, check health.

This is the adapter between the API and redis-py: Redis exceptions become
``ServiceUnavailableError`` here and nowhere else.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from agentlink.errors import JobNotFoundError, ServiceUnavailableError
from agentlink.jobs import JobRecord, ReportSpec, entry_fields, new_job_fields, record_from_hash
from agentlink.streams import ENQUEUE_LUA, Keys, flatten, now_iso

T = TypeVar("T")


class Accepted:
    """What the API tells a client about a job it just accepted."""

    __slots__ = ("entry_id", "job_id")

    def __init__(self, job_id: str, entry_id: str) -> None:
        self.job_id = job_id
        self.entry_id = entry_id


class JobStore:
    """Enqueues and reads jobs for the API."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._enqueue = client.register_script(ENQUEUE_LUA)
        self._group_ready = False

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise ServiceUnavailableError(
                "the job queue (Redis) is unreachable; try again shortly"
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

    async def enqueue(self, spec: ReportSpec) -> Accepted:
        """Write the job hash and XADD the entry in one atomic step."""
        if not self._group_ready:
            await self.ensure_group()
        job_id = str(uuid.uuid4())
        now = now_iso()
        entry = flatten(entry_fields(job_id, spec, now))
        job = flatten(new_job_fields(job_id, spec, now))
        keys = [self.keys.stream, self.keys.job(job_id), self.keys.index]
        entry_id = await self._call(
            lambda: self._enqueue(keys=keys, args=[len(entry), *entry, *job])
        )
        return Accepted(job_id, str(entry_id))

    async def get(self, job_id: str) -> JobRecord:
        """The job's record; ``JobNotFoundError`` if there is none."""
        fields: dict[str, str] = await self._call(
            lambda: self.client.hgetall(self.keys.job(job_id))  # type: ignore[arg-type,return-value]
        )
        if not fields.get("status"):
            raise JobNotFoundError(job_id)
        return record_from_hash(fields)

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
