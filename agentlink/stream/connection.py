"""The one seam between AgentLink and redis-py: connections, and the error translator.

Everything that talks to Redis — the API, the consumers and the notifier, the CLI, the
metrics scrape — connects here and lets ``translate`` turn redis-py's exceptions into
ours, so that no other module imports ``redis.exceptions``:

- Redis unreachable, timing out, loading its AOF, out of memory, read-only, failing to
  fsync (MISCONF), busy with a script, or its stream or group gone (NOGROUP) →
  ``ServiceUnavailableError``: wait and try again.
- Redis refusing a command for any other reason (a script's error, a wrong type) →
  ``RedisCommandError``: a bug, never retried as if it were an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
import redis.exceptions

from agentlink.errors import ConfigurationError, RedisCommandError, ServiceUnavailableError
from agentlink.stream.keys import Keys

T = TypeVar("T")

COMMAND_TIMEOUT_S = 5.0
"""Longest one Redis call of the API may take once it has a connection."""
MIN_REDIS_VERSION = (7, 0)
"""The oldest Redis AgentLink runs on: its scripts declare flags (``#!lua flags=``) and
XAUTOCLAIM names the deleted entries it finds apart, both new in Redis 7.0."""

# redis-py strips these codes from its messages; name them again for people.
_UNAVAILABLE_CLASSES: dict[type[Exception], str] = {
    redis.exceptions.BusyLoadingError: "LOADING",
    redis.exceptions.OutOfMemoryError: "OOM",
    redis.exceptions.ReadOnlyError: "READONLY",
    redis.exceptions.TryAgainError: "TRYAGAIN",
}
_UNAVAILABLE_CODES = ("OOM", "MISCONF", "BUSY ", "NOGROUP", "LOADING", "READONLY", "TRYAGAIN")


def translate(exc: BaseException) -> BaseException:
    """Our error for a redis-py exception (or for ``TimeoutError``, the deadline of an
    asyncio call); any other exception comes back as it is."""
    if isinstance(exc, TimeoutError):
        return ServiceUnavailableError(
            f"the job queue (Redis) did not answer within {COMMAND_TIMEOUT_S:g} s; "
            "try again shortly"
        )
    if not isinstance(exc, redis.exceptions.RedisError):
        return exc
    unavailable: str | None = None
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        unavailable = "the job queue (Redis) is unreachable; try again shortly"
    elif code := next((c for k, c in _UNAVAILABLE_CLASSES.items() if isinstance(exc, k)), ""):
        unavailable = f"the job queue cannot accept work ({code}: {exc}); try again later"
    elif not isinstance(exc, redis.exceptions.ResponseError):
        unavailable = f"the job queue (Redis) failed: {exc}"
    elif str(exc).startswith(_UNAVAILABLE_CODES):
        unavailable = f"the job queue cannot accept work: {exc}"
    if unavailable is not None:
        return ServiceUnavailableError(unavailable)
    return RedisCommandError(f"Redis refused a command: {exc}")


def is_no_script(reply: object) -> bool:
    """True for the reply of an EVALSHA whose script Redis does not have (restarted, or
    its script cache flushed): load it and call again."""
    return isinstance(reply, redis.exceptions.NoScriptError)


def call(op: Callable[[], T]) -> T:
    """Run one synchronous Redis operation, translating its errors."""
    try:
        return op()
    except Exception as exc:
        error = translate(exc)
        if error is exc:
            raise
        raise error from exc


async def call_async(op: Callable[[], Awaitable[T]], timeout_s: float = COMMAND_TIMEOUT_S) -> T:
    """Run one asyncio Redis operation within ``timeout_s``, translating its errors."""
    try:
        async with asyncio.timeout(timeout_s):
            return await op()
    except Exception as exc:
        error = translate(exc)
        if error is exc:
            raise
        raise error from exc


def connect(url: str, *, timeout_s: float = 10.0) -> redis.Redis:
    """A synchronous client (replies decoded to ``str``) whose socket reads may take
    ``timeout_s``: a blocking read of the consumers must fit in it."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=3,
        health_check_interval=30,
    )


def connect_async(url: str, *, max_connections: int) -> aioredis.Redis:
    """An asyncio client over a bounded pool that waits for a free connection.

    No socket timeout: redis-py would start a task per command to enforce it on every
    write (``asyncio.wait_for``); ``call_async`` puts one deadline around each call
    instead, and a call cut short by it disconnects its connection, as any error does.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=None,
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=2,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


def check_version(server_info: dict[str, Any]) -> None:
    """``ConfigurationError`` naming the version found unless ``INFO server`` describes a
    Redis of ``MIN_REDIS_VERSION`` or later."""
    found = str(server_info.get("redis_version") or "")
    try:
        version = tuple(int(part) for part in found.split(".")[:2])
    except ValueError:
        version = ()
    if version < MIN_REDIS_VERSION:
        raise ConfigurationError(
            f"AgentLink needs Redis {'.'.join(map(str, MIN_REDIS_VERSION))} or later; the "
            f"server at REDIS_URL runs Redis {found or '(version unknown)'}"
        )


def ensure_group(client: Any, keys: Keys) -> None:
    """Create the consumer group at id 0 with MKSTREAM, so nothing queued before the first
    consumer is skipped (BUSYGROUP: it exists already); ``ConfigurationError`` first if the
    server is older than ``MIN_REDIS_VERSION``."""
    check_version(call(lambda: client.info("server")))
    try:
        call(lambda: client.xgroup_create(keys.stream, keys.group, id="0", mkstream=True))
    except RedisCommandError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def ensure_group_async(client: aioredis.Redis, keys: Keys) -> None:
    """``ensure_group`` on an asyncio client."""
    check_version(await call_async(lambda: client.info("server")))
    try:
        await call_async(
            lambda: client.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)
        )
    except RedisCommandError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
