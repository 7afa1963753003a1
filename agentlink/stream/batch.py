"""Script calls of many concurrent requests, sent to Redis in shared round trips.

Each POST costs one script call. Sent one by one, every call pays redis-py's whole path
(a pooled connection, a write, an event-loop wake-up for its reply); under load most of an
API process's time went there. Here calls queue up while the previous round trip is under
way and then go out together as one pipeline (at most ``MAX_BATCH``), each still its own
atomic script whose reply reaches its own caller. An idle API sends a lone call at once,
so nothing waits for company.

A call still queued when its caller's wait (``AGENTLINK_REDIS_POOL_WAIT_S``) runs out is
dropped and answered "busy"; once sent, its caller waits for the reply (bounded by
``COMMAND_TIMEOUT_S``): a call that may have run is never reported as not run.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from agentlink.errors import ServiceBusyError, ServiceUnavailableError
from agentlink.stream.connection import is_no_script

MAX_BATCH = 128
"""Calls per round trip at most: a bound on how long one pipeline holds Redis."""


@dataclass(slots=True)
class _Call:
    sha: str
    source: str | bytes | memoryview
    keys: Sequence[str]
    args: Sequence[str | bytes | int]
    deadline: float
    future: asyncio.Future[Any]


@dataclass(slots=True)
class ScriptBatcher:
    """Sends queued script calls over one connection, a pipeline per round trip.

    ``translate`` turns a redis-py exception into ours (the store's single translator);
    ``command_timeout_s`` bounds one round trip."""

    client: aioredis.Redis
    wait_s: float
    command_timeout_s: float
    translate: Callable[[BaseException], BaseException]
    _queue: collections.deque[_Call] = field(default_factory=collections.deque)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: asyncio.Task[None] | None = None
    _sweep: asyncio.TimerHandle | None = None

    async def call(
        self, sha: str, source: str | bytes | memoryview, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Run script ``sha`` (``source`` if Redis lost it) with ``keys`` and ``args``."""
        loop = asyncio.get_running_loop()
        call = _Call(sha, source, keys, args, loop.time() + self.wait_s, loop.create_future())
        self._queue.append(call)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._run())
        self._wakeup.set()
        if self._sweep is None:
            self._sweep = loop.call_at(call.deadline, self._expire)
        return await call.future

    def close(self) -> None:
        """Stop sending (pending calls are answered busy)."""
        if self._runner is not None:
            self._runner.cancel()
        while self._queue:
            self._fail(self._queue.popleft())

    def _fail(self, call: _Call) -> None:
        if not call.future.done():
            call.future.set_exception(
                ServiceBusyError(
                    f"the API is busy: Redis did not take the request within {self.wait_s:g} s; "
                    "retry shortly"
                )
            )

    def _expire(self) -> None:
        """Answer "busy" to the queued (never sent) calls whose wait has run out."""
        self._sweep = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._queue and (self._queue[0].deadline <= now or self._queue[0].future.done()):
            self._fail(self._queue.popleft())
        if self._queue:
            self._sweep = loop.call_at(self._queue[0].deadline, self._expire)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch: list[_Call] = []
                while self._queue and len(batch) < MAX_BATCH:
                    call = self._queue.popleft()
                    if not call.future.done():  # its caller went away (a dropped connection)
                        batch.append(call)
                if batch:
                    await self._send(batch)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self.command_timeout_s):
                replies = await self._pipeline(batch)
                lost = [c for c, r in zip(batch, replies, strict=True) if is_no_script(r)]
                if lost:
                    # Redis restarted or its script cache was flushed: load and send again.
                    for source in {c.source for c in lost}:
                        await self.client.script_load(source)
                    again = dict(zip(map(id, lost), await self._pipeline(lost), strict=True))
                    replies = [again.get(id(c), r) for c, r in zip(batch, replies, strict=True)]
        except asyncio.CancelledError:
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(ServiceUnavailableError("the API is stopping"))
            raise
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
            error = self.translate(exc)
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(error)
            return
        for call, reply in zip(batch, replies, strict=True):
            if call.future.done():
                continue
            if isinstance(reply, BaseException):
                call.future.set_exception(self.translate(reply))
            else:
                call.future.set_result(reply)

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for c in calls:
            pipe.execute_command("EVALSHA", c.sha, len(c.keys), *c.keys, *c.args)
        return await pipe.execute(raise_on_error=False)
