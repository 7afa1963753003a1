"""One reading of the stream state from Redis: the queue, the consumers, the counters.

``read_stream_state`` takes two pipelined round trips (each command O(1) or bounded) on
the API's own connection pool and derives the scaling figures from what it read
(``agentlink.observe.capacity``); ``agentlink.observe.scrape`` turns the reading into the
gauges of ``/metrics``.

Each reading also stores one sample of the cumulative counters (entries added, busy
seconds, jobs done) in a sorted set trimmed to the scaling window, so every API process
computes the same rates from the same history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from agentlink.observe import capacity
from agentlink.observe.capacity import ConsumerState, HostMemory, MemoryFit, Rates, Sample
from agentlink.settings import Settings
from agentlink.stream.connection import translate
from agentlink.stream.encoding import entry_time_s
from agentlink.stream.keys import Keys

MAX_CONSUMERS_READ = 1000
"""Heartbeat hashes read per scrape; the live count itself is exact."""
LAG_COUNT_LIMIT = 1000
"""When Redis cannot say the group's lag (after deletions), count at most this many."""
_MISSING = ("no such key", "NOGROUP")
_CONSUMER_FIELDS = ["state", "job_since", "rss", "render_rss", "render_peak_rss", "job"]


@dataclass(frozen=True, slots=True)
class ScalingConfig:
    """The settings the stream state and the scaling arithmetic depend on (their
    defaults are the settings', ``from_settings``)."""

    lease_s: float
    window_s: float
    target_utilisation: float
    memory_reserve_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ScalingConfig:
        """The configuration ``settings`` describe."""
        return cls(
            lease_s=settings.lease_s,
            window_s=float(settings.scaling_window_s),
            target_utilisation=settings.target_utilisation,
            memory_reserve_bytes=settings.memory_reserve_mb * 1024 * 1024,
        )


@dataclass(frozen=True, slots=True)
class StreamState:
    """One reading of the queue, the consumers and Redis, with the gauges derived from it."""

    length: int
    lag: int
    pending: int
    oldest_pending_age_s: float
    oldest_waiting_age_s: float
    dlq_length: int
    consumers_live: int
    consumers: list[ConsumerState]
    redis_used_memory_bytes: int
    redis_maxmemory_bytes: int
    waiting: int
    rates: Rates
    workers_needed: int
    estimated_wait_s: float
    memory: MemoryFit | None


def _ok(reply: Any, default: Any) -> Any:
    """A pipelined reply; ``default`` for a missing stream or group, other errors raised."""
    if isinstance(reply, Exception):
        if any(marker in str(reply) for marker in _MISSING):
            return default
        raise translate(reply)
    return reply


def _int(raw: str | None) -> int:
    try:
        return int(float(raw)) if raw else 0
    except ValueError:
        return 0


def _consumer(name: str, fields: list[str | None], now: float) -> ConsumerState:
    state, since, rss, render_rss, render_peak, job = fields
    elapsed = None
    if since:
        try:
            elapsed = max(0.0, now - float(since))
        except ValueError:
            elapsed = None
    return ConsumerState(
        name=name,
        state=state or "idle",
        job_elapsed_s=elapsed,
        rss_bytes=_int(rss),
        render_rss_bytes=_int(render_rss),
        render_peak_rss_bytes=_int(render_peak),
        job=job or None,
    )


@dataclass(frozen=True, slots=True)
class _Overview:
    """The first round trip's answers."""

    stream: dict[str, Any]
    group: dict[str, Any] | None
    oldest_pending: str | None
    dlq_length: int
    consumers_live: int
    names: list[str]
    sample: Sample
    then: Sample | None
    memory: dict[str, Any]


async def _overview(
    client: aioredis.Redis, keys: Keys, config: ScalingConfig, now: float
) -> _Overview:
    live_since = now - 2 * config.lease_s
    pipe = client.pipeline(transaction=False)
    pipe.xinfo_stream(keys.stream)
    pipe.xinfo_groups(keys.stream)
    pipe.xpending(keys.stream, keys.group)
    pipe.xlen(keys.dead)
    pipe.zcount(keys.consumers, live_since, "+inf")
    pipe.zrangebyscore(keys.consumers, live_since, "+inf", start=0, num=MAX_CONSUMERS_READ)
    pipe.hmget(capacity.work_key(keys), ["busy_s", "done"])
    pipe.info("memory")
    pipe.zrangebyscore(capacity.samples_key(keys), now - config.window_s, "+inf", start=0, num=1)
    replies = await pipe.execute(raise_on_error=False)
    stream: dict[str, Any] = _ok(replies[0], {})
    groups: list[dict[str, Any]] = _ok(replies[1], [])
    busy_s, done = _ok(replies[6], [None, None])
    oldest_sample: list[str] = _ok(replies[8], [])
    return _Overview(
        stream=stream,
        group=next((g for g in groups if g.get("name") == keys.group), None),
        oldest_pending=_ok(replies[2], {}).get("min"),
        dlq_length=int(_ok(replies[3], 0)),
        consumers_live=int(_ok(replies[4], 0)),
        names=_ok(replies[5], []),
        sample=Sample(
            at_s=now,
            added=int(stream.get("entries-added", 0)),
            busy_s=float(busy_s or 0.0),
            done=_int(done),
        ),
        then=Sample.decode(oldest_sample[0]) if oldest_sample else None,
        memory=_ok(replies[7], {}),
    )


async def _details(
    client: aioredis.Redis, keys: Keys, config: ScalingConfig, now: float, seen: _Overview
) -> tuple[list[ConsumerState], int, str | None]:
    """The live consumers' heartbeats, the lag and the oldest undelivered entry; stores the
    counter sample."""
    pipe = client.pipeline(transaction=False)
    for name in seen.names:
        pipe.hmget(keys.consumer(name), _CONSUMER_FIELDS)
    group = seen.group
    lag: int | None = group.get("lag") if group else None
    look_up = group is not None and (lag is None or int(lag) > 0)
    if group is not None and look_up:
        pipe.xrange(
            keys.stream,
            min="(" + str(group["last-delivered-id"]),
            max="+",
            count=LAG_COUNT_LIMIT if lag is None else 1,
        )
    samples = capacity.samples_key(keys)
    pipe.zadd(samples, {seen.sample.encode(): now})
    pipe.zremrangebyscore(samples, "-inf", now - config.window_s - 60)
    # The sample's ZADD may fail (Redis at maxmemory); the reading itself still stands.
    replies = await pipe.execute(raise_on_error=False)
    consumers = [
        _consumer(name, _ok(reply, [None] * len(_CONSUMER_FIELDS)), now)
        for name, reply in zip(seen.names, replies, strict=False)
    ]
    if group is None:
        # No group yet: every entry waits, the first one longest.
        first = seen.stream.get("first-entry")
        return consumers, int(seen.stream.get("length", 0)), str(first[0]) if first else None
    if not look_up:
        return consumers, 0, None
    undelivered: list[Any] = _ok(replies[len(seen.names)], [])
    head = str(undelivered[0][0]) if undelivered else None
    return consumers, len(undelivered) if lag is None else int(lag), head


async def read_stream_state(
    client: aioredis.Redis,
    keys: Keys,
    config: ScalingConfig,
    *,
    now: float | None = None,
    host: HostMemory | None = None,
) -> StreamState:
    """Read the stream, its group, the dead letters, the heartbeats and the counters.

    Raises Redis's exceptions (the caller reports Redis as down). Records this reading's
    counter sample for later rate computations. ``host`` is the memory the workers share
    (None: no memory budget).
    """
    now = time.time() if now is None else now
    seen = await _overview(client, keys, config, now)
    consumers, lag, waiting_head = await _details(client, keys, config, now, seen)
    pending = int(seen.group.get("pending", 0)) if seen.group else 0
    waiting = capacity.waiting_jobs(lag, pending, consumers)
    rates = capacity.rates(seen.sample, seen.then)
    return StreamState(
        length=int(seen.stream.get("length", 0)),
        lag=lag,
        pending=pending,
        oldest_pending_age_s=_age(seen.oldest_pending if pending else None, now),
        oldest_waiting_age_s=_age(waiting_head, now),
        dlq_length=seen.dlq_length,
        consumers_live=seen.consumers_live,
        consumers=consumers,
        redis_used_memory_bytes=int(seen.memory.get("used_memory", 0)),
        redis_maxmemory_bytes=int(seen.memory.get("maxmemory", 0)),
        waiting=waiting,
        rates=rates,
        workers_needed=capacity.workers_needed(
            rates.arrivals_per_s, rates.service_s, config.target_utilisation, waiting
        ),
        estimated_wait_s=capacity.estimated_wait_s(waiting, consumers, rates.service_s),
        memory=capacity.memory_fit(consumers, host.available_bytes, config.memory_reserve_bytes)
        if host
        else None,
    )


def _age(entry_id: str | None, now: float) -> float:
    return max(0.0, now - entry_time_s(entry_id)) if entry_id else 0.0
