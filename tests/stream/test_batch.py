"""Shared round trips for the request scripts (agentlink.stream.batch), against real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from agentlink.admin.devredis import RedisServer
from agentlink.errors import RedisCommandError, ServiceBusyError, ServiceUnavailableError
from agentlink.stream.batch import ScriptBatcher
from agentlink.stream.connection import translate

ECHO = "if ARGV[1] == 'fail' then return redis.error_reply('ERR asked to fail') end return ARGV[1]"


@asynccontextmanager
async def batcher(url: str, wait_s: float = 5.0) -> AsyncIterator[tuple[ScriptBatcher, str]]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    sha = await client.script_load(ECHO)
    batch = ScriptBatcher(client, wait_s, 5.0, translate)
    try:
        yield batch, sha
    finally:
        batch.close()
        await client.aclose()


def run(coroutine: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coroutine())  # type: ignore[arg-type]


class TestSharedRoundTrips:
    def test_every_caller_gets_its_own_reply(self, redis_url: str) -> None:
        """500 concurrent calls, each answered with its own argument."""

        async def go() -> list[Any]:
            async with batcher(redis_url) as (batch, sha):
                return await asyncio.gather(
                    *(batch.call(sha, ECHO, ["k"], [f"call-{i}"]) for i in range(500))
                )

        assert run(go) == [f"call-{i}" for i in range(500)]

    def test_one_failing_script_fails_only_its_caller(self, redis_url: str) -> None:
        """An error reply reaches the one call that caused it."""

        async def go() -> list[Any]:
            async with batcher(redis_url) as (batch, sha):
                args = ["a", "fail", "c"]
                return await asyncio.gather(
                    *(batch.call(sha, ECHO, ["k"], [a]) for a in args), return_exceptions=True
                )

        first, failed, third = run(go)
        assert (first, third) == ("a", "c")
        assert isinstance(failed, RedisCommandError)
        assert "asked to fail" in str(failed)

    def test_a_flushed_script_cache_is_reloaded(self, redis_url: str, r: redis.Redis) -> None:
        """After SCRIPT FLUSH (a restarted Redis) the calls load the script and succeed."""

        async def go() -> list[Any]:
            async with batcher(redis_url) as (batch, sha):
                await batch.call(sha, ECHO, ["k"], ["warm"])
                r.script_flush()
                return await asyncio.gather(
                    *(batch.call(sha, ECHO, ["k"], [str(i)]) for i in range(20))
                )

        assert run(go) == [str(i) for i in range(20)]

    def test_calls_queued_too_long_are_busy(self, redis_url: str, r: redis.Redis) -> None:
        """While Redis holds one round trip, the calls queued behind it are answered busy
        after the wait; the held call completes when Redis moves again."""

        async def go() -> tuple[Any, list[Any]]:
            async with batcher(redis_url, wait_s=0.3) as (batch, sha):
                r.execute_command("CLIENT", "PAUSE", "3000", "WRITE")  # 10x the wait
                try:
                    held = asyncio.ensure_future(batch.call(sha, ECHO, ["k"], ["held"]))
                    deadline = time.monotonic() + 30
                    while int(r.info("clients")["blocked_clients"]) < 1:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.01)
                    queued = await asyncio.gather(
                        *(batch.call(sha, ECHO, ["k"], ["late"]) for _ in range(3)),
                        return_exceptions=True,
                    )
                finally:
                    r.execute_command("CLIENT", "UNPAUSE")
                return await held, queued

        held, queued = run(go)
        assert held == "held"
        assert all(isinstance(q, ServiceBusyError) for q in queued), queued

    def test_redis_gone_is_unavailable_for_every_caller(self, fresh_redis: RedisServer) -> None:
        """A dead Redis: every call of the round trip gets ServiceUnavailableError."""

        async def go() -> list[Any]:
            async with batcher(fresh_redis.url) as (batch, sha):
                fresh_redis.kill()
                return await asyncio.gather(
                    *(batch.call(sha, ECHO, ["k"], ["x"]) for _ in range(5)),
                    return_exceptions=True,
                )

        errors = run(go)
        assert all(isinstance(e, ServiceUnavailableError) for e in errors), errors
        assert not any(isinstance(e, ServiceBusyError) for e in errors)

    def test_closing_answers_every_waiting_caller(self, redis_url: str, r: redis.Redis) -> None:
        """close() while a round trip is held: its caller hears that the API is stopping,
        the queued one that it is busy; nobody waits forever."""

        async def go() -> list[Any]:
            async with batcher(redis_url) as (batch, sha):
                r.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
                try:
                    held = asyncio.ensure_future(batch.call(sha, ECHO, ["k"], ["held"]))
                    deadline = time.monotonic() + 30
                    while int(r.info("clients")["blocked_clients"]) < 1:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.01)
                    queued = asyncio.ensure_future(batch.call(sha, ECHO, ["k"], ["queued"]))
                    await asyncio.sleep(0)  # the call joins the queue
                    batch.close()
                    return await asyncio.gather(held, queued, return_exceptions=True)
                finally:
                    r.execute_command("CLIENT", "UNPAUSE")

        held, queued = run(go)
        assert isinstance(held, ServiceUnavailableError)
        assert "stopping" in str(held)
        assert isinstance(queued, ServiceBusyError)


@pytest.mark.parametrize("count", [1, 7])
def test_a_lone_call_is_sent_at_once(redis_url: str, count: int) -> None:
    """An idle batcher sends right away: the call completes without other calls."""

    async def go() -> list[Any]:
        async with batcher(redis_url) as (batch, sha):
            return [await batch.call(sha, ECHO, ["k"], [str(i)]) for i in range(count)]

    assert run(go) == [str(i) for i in range(count)]
