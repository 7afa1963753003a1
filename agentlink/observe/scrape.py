"""The ``/metrics`` exposition of the API: its own metrics plus the stream state now.

Prometheus collectors are synchronous, the API is asyncio: rather than block the event loop
with a synchronous Redis client inside ``collect()``, the ``/metrics`` handler awaits
``read_stream_state`` (``agentlink.observe.stream_state``), then renders a one-off
collector over that snapshot. The reading goes through the API store's ``run``, like every
request: it waits for a connection of the bounded pool and has Redis's errors translated.
A scrape never fails because of Redis: past ``SCRAPE_BUDGET_S`` (the wait for a connection
included) or on any Redis error it reports ``agentlink_redis_up 0`` and leaves the stream
gauges out (absent, not stale zeros that would look like an empty queue).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import redis.asyncio as aioredis
import structlog
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from agentlink.errors import RedisCommandError, ServiceUnavailableError
from agentlink.observe import capacity, metrics
from agentlink.observe.capacity import HostMemory, MemoryFit
from agentlink.observe.stream_state import ScalingConfig, StreamState, read_stream_state
from agentlink.settings import Settings
from agentlink.stream.keys import Keys

log = structlog.get_logger(__name__)
T = TypeVar("T")

Run = Callable[[Callable[[], Awaitable[StreamState]]], Awaitable[StreamState]]
"""How a reading is run on a pooled connection, errors translated (``JobStore.run``)."""

CONTENT_TYPE = "text/plain; version=0.0.4"
"""The classic text format, which every Prometheus reads (Litestar adds the charset)."""
SCRAPE_BUDGET_S = 2.5
"""Longest a scrape waits for Redis (Prometheus's own scrape timeout is 10 s)."""


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
            yield from _families(_HOST_GAUGES, self.host)
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


_HOST_GAUGES: tuple[tuple[str, str, Callable[[HostMemory], float]], ...] = (
    (
        "agentlink_host_memory_total_bytes",
        "The host's memory (MemTotal of /proc/meminfo).",
        lambda h: h.total_bytes,
    ),
    (
        "agentlink_host_memory_available_bytes",
        "Memory the host can still give without swapping (MemAvailable).",
        lambda h: h.available_bytes,
    ),
)
_MEMORY_GAUGES: tuple[tuple[str, str, Callable[[MemoryFit], float]], ...] = (
    (
        "agentlink_worker_memory_peak_bytes",
        "Largest measured footprint of one worker: consumer RSS + render child peak RSS.",
        lambda m: m.peak_bytes,
    ),
    (
        "agentlink_workers_memory_fit",
        "Workers (the live ones included) that fit in the host's available memory at "
        "that footprint, keeping AGENTLINK_MEMORY_RESERVE_MB free.",
        lambda m: m.workers,
    ),
)


def _families(
    gauges: tuple[tuple[str, str, Callable[[T], float]], ...], source: T
) -> Iterator[Metric]:
    for name, documentation, value in gauges:
        yield _gauge(name, documentation, value(source))


def _stream_families(state: StreamState) -> Iterator[Metric]:
    yield from _families(_STREAM_GAUGES, state)
    if state.memory is not None:
        yield from _families(_MEMORY_GAUGES, state.memory)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


async def exposition(client: aioredis.Redis, run: Run, settings: Settings) -> bytes:
    """The text exposition of ``/metrics``: the API's metrics and the stream state now, read
    from ``client`` through ``run``."""
    started = time.perf_counter()
    host = capacity.host_memory()
    config = ScalingConfig.from_settings(settings)
    state: StreamState | None
    try:
        async with asyncio.timeout(SCRAPE_BUDGET_S):
            state = await run(
                lambda: read_stream_state(client, Keys(settings.key_prefix), config, host=host)
            )
    except TimeoutError:
        log.warning("metrics.redis_unavailable", error=f"no reading within {SCRAPE_BUDGET_S} s")
        state = None
    except (ServiceUnavailableError, RedisCommandError, OSError) as exc:
        log.warning("metrics.redis_unavailable", error=str(exc) or type(exc).__name__)
        state = None
    collector = ScrapeCollector(state, time.perf_counter() - started, host)
    return generate_latest(collector)
