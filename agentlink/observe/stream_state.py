"""The stream state and the scaling gauges, read from Redis when Prometheus scrapes the API.

Prometheus collectors are synchronous, the API is asyncio: rather than block the event loop
with a synchronous Redis client inside ``collect()``, the ``/metrics`` handler awaits
``read_stream_state`` on the API's own connection pool (two pipelined round trips, each
command O(1) or bounded), then renders a one-off collector over that snapshot. A scrape
never fails because of Redis: past ``SCRAPE_BUDGET_S`` or on any Redis error it reports
``agentlink_redis_up 0`` and leaves the stream gauges out (absent, not stale zeros that
would look like an empty queue).

Each scrape also stores one sample of the cumulative counters (entries added, busy
seconds, jobs done) in a sorted set trimmed to the scaling window, so every API process
computes the same rates from the same history (``agentlink.observe.capacity``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from agentlink.errors import RedisCommandError, ServiceUnavailableError
from agentlink.observe import capacity, metrics
from agentlink.observe.capacity import ConsumerState, HostMemory, MemoryFit, Rates, Sample
from agentlink.settings import Settings
from agentlink.stream.connection import call_async, translate
from agentlink.stream.encoding import entry_time_s
from agentlink.stream.keys import Keys

log = structlog.get_logger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4"
"""The classic text format, which every Prometheus reads (Litestar adds the charset)."""
SCRAPE_BUDGET_S = 2.5
"""Longest a scrape waits for Redis (Prometheus's own scrape timeout is 10 s)."""
MAX_CONSUMERS_READ = 1000
"""Heartbeat hashes read per scrape; the live count itself is exact."""
LAG_COUNT_LIMIT = 1000
"""When Redis cannot say the group's lag (after deletions), count at most this many."""
_MISSING = ("no such key", "NOGROUP")
_CONSUMER_FIELDS = ["state", "job_since", "rss", "render_rss", "render_peak_rss"]


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
    state, since, rss, render_rss, render_peak = fields
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


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class ScrapeCollector:
    """The API's metrics plus one reading of the stream state, for one exposition."""

    def __init__(
        self, state: StreamState | None, read_s: float, host: HostMemory | None = None
    ) -> None:
        self.state = state
        self.read_s = read_s
        self.host = host

    def collect(self) -> Iterator[Metric]:
        """Every family of the API registry, then the gauges of this reading."""
        yield from metrics.exposed_registry().collect()
        yield _gauge(
            "agentlink_redis_up",
            "1 if Redis answered this scrape, 0 if not.",
            self.state is not None,
        )
        yield _gauge(
            "agentlink_stream_read_seconds",
            "Time this scrape spent reading the stream state from Redis.",
            self.read_s,
        )
        yield _gauge("agentlink_host_cpus", "CPUs this host gives the API process.", _cpus())
        if self.host is not None:
            yield _gauge(
                "agentlink_host_memory_total_bytes",
                "The host's memory (MemTotal of /proc/meminfo).",
                self.host.total_bytes,
            )
            yield _gauge(
                "agentlink_host_memory_available_bytes",
                "Memory the host can still give without swapping (MemAvailable).",
                self.host.available_bytes,
            )
        if self.state is not None:
            yield from _stream_families(self.state)


def _service(s: StreamState) -> float:
    return math.nan if s.rates.service_s is None else s.rates.service_s


_STREAM_GAUGES: tuple[tuple[str, str, Callable[[StreamState], float]], ...] = (
    (
        "agentlink_stream_length",
        "Entries in the report stream (acked ones kept for inspection included).",
        lambda s: s.length,
    ),
    (
        "agentlink_stream_lag",
        "Entries no consumer has read yet (the group's lag).",
        lambda s: s.lag,
    ),
    (
        "agentlink_stream_pending",
        "Entries read but not acked: in progress, retrying, or left by a dead consumer.",
        lambda s: s.pending,
    ),
    (
        "agentlink_stream_oldest_pending_age_seconds",
        "Age (since submission) of the oldest entry read but not acked; 0 if none.",
        lambda s: s.oldest_pending_age_s,
    ),
    (
        "agentlink_stream_oldest_waiting_age_seconds",
        "Age (since submission) of the oldest entry no consumer has read yet; 0 if none.",
        lambda s: s.oldest_waiting_age_s,
    ),
    (
        "agentlink_dlq_length",
        "Dead letters waiting for an operator (agentlink dlq list).",
        lambda s: s.dlq_length,
    ),
    (
        "agentlink_consumers_live",
        "Consumers whose heartbeat is younger than two leases.",
        lambda s: s.consumers_live,
    ),
    (
        "agentlink_consumers_busy",
        "Live consumers working on a job.",
        lambda s: sum(1 for c in s.consumers if c.busy),
    ),
    (
        "agentlink_consumers_paused",
        "Live consumers holding their job while the storage rejects our credentials.",
        lambda s: sum(1 for c in s.consumers if c.paused),
    ),
    (
        "agentlink_jobs_waiting",
        "Jobs waiting for a consumer: the lag plus pending entries no live consumer holds.",
        lambda s: s.waiting,
    ),
    (
        "agentlink_redis_used_memory_bytes",
        "Memory Redis uses (INFO memory: used_memory).",
        lambda s: s.redis_used_memory_bytes,
    ),
    (
        "agentlink_redis_maxmemory_bytes",
        "Redis's maxmemory; 0 means no limit.",
        lambda s: s.redis_maxmemory_bytes,
    ),
    (
        "agentlink_scaling_window_seconds",
        "History behind the rates (grows up to AGENTLINK_SCALING_WINDOW_S).",
        lambda s: s.rates.span_s,
    ),
    (
        "agentlink_arrivals_per_second",
        "Jobs submitted per second over the scaling window.",
        lambda s: s.rates.arrivals_per_s,
    ),
    (
        "agentlink_service_time_seconds",
        "Mean seconds a consumer is busy per finished job (scaling window, else all time); "
        "NaN before the first.",
        _service,
    ),
    (
        "agentlink_workers_needed",
        "Workers the load needs: ceil(arrivals/s x service time / "
        "AGENTLINK_TARGET_UTILISATION), at least 1 while jobs wait or arrive.",
        lambda s: s.workers_needed,
    ),
    (
        "agentlink_estimated_wait_seconds",
        "Seconds a job submitted now would wait for a consumer; +Inf with none taking work.",
        lambda s: s.estimated_wait_s,
    ),
)


def _stream_families(state: StreamState) -> Iterator[Metric]:
    for name, documentation, value in _STREAM_GAUGES:
        yield _gauge(name, documentation, value(state))
    if state.memory is not None:
        yield _gauge(
            "agentlink_worker_memory_peak_bytes",
            "Largest measured footprint of one worker: consumer RSS + render child peak RSS.",
            state.memory.peak_bytes,
        )
        yield _gauge(
            "agentlink_workers_memory_fit",
            "Workers (the live ones included) that fit in the host's available memory at "
            "that footprint, keeping AGENTLINK_MEMORY_RESERVE_MB free.",
            state.memory.workers,
        )


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


async def exposition(client: aioredis.Redis, settings: Settings) -> bytes:
    """The text exposition of ``/metrics``: the API's metrics and the stream state now."""
    started = time.perf_counter()
    host = capacity.host_memory()
    state: StreamState | None
    try:
        state = await call_async(
            lambda: read_stream_state(
                client, Keys(settings.key_prefix), ScalingConfig.from_settings(settings), host=host
            ),
            timeout_s=SCRAPE_BUDGET_S,
        )
    except (ServiceUnavailableError, RedisCommandError, OSError) as exc:
        log.warning("metrics.redis_unavailable", error=str(exc) or type(exc).__name__)
        state = None
    collector = ScrapeCollector(state, time.perf_counter() - started, host)
    return generate_latest(collector)
