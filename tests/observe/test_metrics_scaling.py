"""The API's /metrics: the stream state read from Redis at scrape time, and the scaling
arithmetic behind workers needed, wait and memory fit.

Expositions are parsed with prometheus_client's own parser and checked value by value.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from litestar.testing import TestClient
from prometheus_client import generate_latest

from agentlink.admin.devredis import free_port
from agentlink.api import create_app
from agentlink.api.store import open_store
from agentlink.observe import capacity
from agentlink.observe import scrape as scrape_module
from agentlink.observe.capacity import ConsumerState, HostMemory, Sample
from agentlink.observe.scrape import ScrapeCollector, exposition
from agentlink.observe.stream_state import ScalingConfig, read_stream_state
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import submit
from tests.support.metrics import MIB, names, parse, scrape, value

# -- the stream state ---------------------------------------------------------------------------


def beat(
    r: redis.Redis, keys: Keys, name: str, at: float, state: str = "idle", **fields: str
) -> None:
    """Write a consumer's heartbeat as a live consumer would."""
    r.zadd(keys.consumers, {name: int(at)})
    r.hset(keys.consumer(name), mapping={"state": state, "token": "t", **fields})


class TestStreamState:
    def test_queue_gauges_after_known_activity(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Length, lag, pending, ages, dead letters and consumers, exactly as set up."""
        started = time.time()
        job_ids = [submit(client) for _ in range(3)]
        # A consumer read the first entry and is working on it; two others wait unread.
        r.xreadgroup(keys.group, "test-a", {keys.stream: ">"}, count=1)
        now = time.time()
        beat(r, keys, "test-a", now, "busy", job=job_ids[0], job_since=f"{now:.3f}")
        beat(r, keys, "test-b", now, "idle")
        beat(r, keys, "test-c", now, "paused: storage misconfigured")
        beat(r, keys, "test-gone", now - 3600, "busy")  # stopped beating an hour ago
        r.xadd(keys.dead, {"job_id": "d1", "error": "x"})
        r.xadd(keys.dead, {"job_id": "d2", "error": "y"})
        r.config_set("maxmemory", 200 * MIB)
        try:
            samples = scrape(client)
        finally:
            r.config_set("maxmemory", 0)
        elapsed = time.time() - started
        assert value(samples, "agentlink_redis_up") == 1
        assert value(samples, "agentlink_stream_length") == 3
        assert value(samples, "agentlink_stream_lag") == 2
        assert value(samples, "agentlink_stream_pending") == 1
        assert value(samples, "agentlink_dlq_length") == 2
        assert value(samples, "agentlink_consumers_live") == 3
        assert value(samples, "agentlink_consumers_busy") == 1
        assert value(samples, "agentlink_consumers_paused") == 1
        # The pending entry is held by the busy consumer: only the two unread ones wait.
        assert value(samples, "agentlink_jobs_waiting") == 2
        assert 0 <= value(samples, "agentlink_stream_oldest_pending_age_seconds") <= elapsed
        assert 0 <= value(samples, "agentlink_stream_oldest_waiting_age_seconds") <= elapsed
        assert value(samples, "agentlink_redis_used_memory_bytes") > 0
        assert value(samples, "agentlink_redis_maxmemory_bytes") == 200 * MIB
        assert 0 < value(samples, "agentlink_stream_read_seconds") < 1

    def test_oldest_waiting_entry_is_the_first_unread(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The waiting age is the first entry after the group's last-delivered id."""
        # The API created the (empty) stream and its group at start; an entry ten minutes old:
        ten_minutes_ago = int(time.time() * 1000) - 600_000
        r.xadd(keys.stream, {"job_id": "old", "v": "1"}, id=f"{ten_minutes_ago}-0")
        r.xadd(keys.stream, {"job_id": "new", "v": "1"})
        samples = scrape(client)
        assert 599 <= value(samples, "agentlink_stream_oldest_waiting_age_seconds") <= 610
        r.xreadgroup(keys.group, "test-a", {keys.stream: ">"}, count=1)
        samples = scrape(client)
        assert value(samples, "agentlink_stream_oldest_waiting_age_seconds") < 10
        assert 599 <= value(samples, "agentlink_stream_oldest_pending_age_seconds") <= 610

    def test_empty_redis_reads_as_an_empty_queue(
        self, client: TestClient[Any], r: redis.Redis
    ) -> None:
        """No stream, no consumers: zeros, no workers needed, an infinite wait."""
        r.flushall()
        samples = scrape(client)
        assert value(samples, "agentlink_redis_up") == 1
        assert value(samples, "agentlink_stream_length") == 0
        assert value(samples, "agentlink_stream_lag") == 0
        assert value(samples, "agentlink_consumers_live") == 0
        assert value(samples, "agentlink_workers_needed") == 0
        assert value(samples, "agentlink_estimated_wait_seconds") == math.inf
        assert math.isnan(value(samples, "agentlink_service_time_seconds"))

    def test_scrape_answers_while_redis_is_down(self, settings: Settings) -> None:
        """Redis unreachable: 200, agentlink_redis_up 0 and no stale stream gauges."""
        down = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
        with TestClient(app=create_app(down)) as client:
            started = time.monotonic()
            samples = scrape(client)
            took = time.monotonic() - started
        assert took < 4
        assert value(samples, "agentlink_redis_up") == 0
        assert "agentlink_stream_length" not in names(samples)
        assert "agentlink_consumers_live" not in names(samples)
        assert value(samples, "agentlink_host_cpus") >= 1
        assert value(samples, "process_resident_memory_bytes") > 0

    def test_scrape_waits_for_a_pooled_connection(
        self, settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The reading takes a connection of the API's bounded pool, like every request:
        while the only one stays in use past the scrape's budget, agentlink_redis_up is 0
        (no connection beyond the pool); once it is free the reading goes through."""
        monkeypatch.setattr(scrape_module, "SCRAPE_BUDGET_S", 0.5)

        async def scenario() -> tuple[bytes, bytes]:
            async with open_store(redis_url, Keys(), pool_size=1, pool_wait_s=10.0) as store:
                holding, release = asyncio.Event(), asyncio.Event()

                async def hold() -> None:
                    holding.set()
                    await release.wait()

                held = asyncio.ensure_future(store.run(hold))
                await holding.wait()
                busy = await exposition(store.client, store.run, settings)
                release.set()
                await held
                return busy, await exposition(store.client, store.run, settings)

        busy, free = asyncio.run(scenario())
        assert value(parse(busy.decode()), "agentlink_redis_up") == 0
        assert value(parse(free.decode()), "agentlink_redis_up") == 1


# -- the scaling gauges -------------------------------------------------------------------------


def read(redis_url: str, keys: Keys, config: ScalingConfig, **kwargs: Any) -> Any:
    """``read_stream_state`` on a fresh asyncio client."""

    async def run() -> Any:
        client = aioredis.from_url(redis_url, decode_responses=True)
        try:
            return await read_stream_state(client, keys, config, **kwargs)
        finally:
            await client.aclose()

    return asyncio.run(run())


class TestScalingGauges:
    def test_workers_needed_wait_and_memory_fit_from_known_history(
        self, redis_url: str, r: redis.Redis, keys: Keys
    ) -> None:
        """300 arrivals in 600 s at 5 s each, 2 idle workers of 250 MiB peak, 2 GiB free."""
        now = time.time()
        config = ScalingConfig(
            lease_s=15, window_s=900, target_utilisation=0.7, memory_reserve_bytes=256 * MIB
        )
        # Ten minutes ago the counters stood at zero …
        r.zadd(capacity.samples_key(keys), {Sample(now - 600, 0, 0.0, 0).encode(): now - 600})
        # … since then 300 jobs arrived, and consumers spent 120 s on 24 finished jobs.
        pipe = r.pipeline()
        for i in range(300):
            pipe.xadd(keys.stream, {"job_id": f"j{i}", "v": "1"})
        pipe.execute()
        r.xgroup_create(keys.stream, keys.group, id="0")
        r.hset(capacity.work_key(keys), mapping={"busy_s": "120", "done": "24"})
        for name in ("w-1", "w-2"):
            beat(
                r,
                keys,
                name,
                now,
                "idle",
                rss=str(100 * MIB),
                render_rss=str(50 * MIB),
                render_peak_rss=str(150 * MIB),
            )
        host = HostMemory(total_bytes=4096 * MIB, available_bytes=2048 * MIB)
        state = read(redis_url, keys, config, now=now, host=host)
        assert state.rates.span_s == pytest.approx(600)
        assert state.rates.arrivals_per_s == pytest.approx(0.5)
        assert state.rates.service_s == pytest.approx(5.0)
        # ceil(0.5 x 5 / 0.7) = ceil(3.57) = 4
        assert state.workers_needed == 4
        # 300 waiting x 5 s shared by 2 idle consumers
        assert state.estimated_wait_s == pytest.approx(750)
        # footprint 100 + 150 MiB; both may still grow 100 MiB: (2048 - 256 - 200) // 250 = 6
        assert state.memory.peak_bytes == 250 * MIB
        assert state.memory.workers == 8
        samples = parse(generate_latest(ScrapeCollector(state, 0.01, host)).decode())
        assert value(samples, "agentlink_workers_needed") == 4
        assert value(samples, "agentlink_estimated_wait_seconds") == pytest.approx(750)
        assert value(samples, "agentlink_arrivals_per_second") == pytest.approx(0.5)
        assert value(samples, "agentlink_service_time_seconds") == pytest.approx(5.0)
        assert value(samples, "agentlink_workers_memory_fit") == 8
        assert value(samples, "agentlink_worker_memory_peak_bytes") == 250 * MIB
        assert value(samples, "agentlink_host_memory_available_bytes") == 2048 * MIB
        assert value(samples, "agentlink_scaling_window_seconds") == pytest.approx(600)

    def test_each_reading_leaves_a_sample_and_old_ones_are_dropped(
        self, redis_url: str, r: redis.Redis, keys: Keys
    ) -> None:
        """A scrape records the counters now and forgets samples older than the window."""
        now = time.time()
        config = replace(ScalingConfig.from_settings(Settings()), window_s=300)
        r.zadd(capacity.samples_key(keys), {Sample(now - 3600, 0, 0.0, 0).encode(): now - 3600})
        r.xadd(keys.stream, {"job_id": "a", "v": "1"})
        r.hset(capacity.work_key(keys), mapping={"busy_s": "7.5", "done": "3"})
        state = read(redis_url, keys, config, now=now)
        members = r.zrange(capacity.samples_key(keys), 0, -1)
        assert members == [Sample(now, 1, 7.5, 3).encode()]
        # Nothing within the window yet: no rate, the all-time service time.
        assert state.rates.span_s == 0
        assert state.rates.arrivals_per_s == 0
        assert state.rates.service_s == pytest.approx(2.5)


class TestCapacityArithmetic:
    def test_workers_needed(self) -> None:
        """ceil(load / target), a floor of 1 while work waits or arrives, 0 when idle."""
        assert capacity.workers_needed(0.0, 5.0, 0.7, waiting=0) == 0
        assert capacity.workers_needed(0.0, None, 0.7, waiting=3) == 1
        assert capacity.workers_needed(0.01, None, 0.7, waiting=0) == 1
        assert capacity.workers_needed(0.4, 5.0, 1.0, waiting=0) == 2  # exactly 2.0
        assert capacity.workers_needed(0.4, 5.0, 0.7, waiting=0) == 3  # 2.86
        assert capacity.workers_needed(0.001, 5.0, 0.7, waiting=0) == 1

    def test_estimated_wait(self) -> None:
        """0 with an idle consumer, +Inf with none taking work, else shared remaining work."""
        idle = ConsumerState("a", "idle")
        busy = ConsumerState("b", "busy", job_elapsed_s=2.0)
        paused = ConsumerState("c", "paused: storage misconfigured")
        assert capacity.estimated_wait_s(5, [], 4.0) == math.inf
        assert capacity.estimated_wait_s(0, [paused], 4.0) == math.inf
        assert capacity.estimated_wait_s(0, [idle, busy], 4.0) == 0
        # busy has 2 s left; 1 waiting job of 4 s; one consumer: 6 s
        assert capacity.estimated_wait_s(1, [busy, paused], 4.0) == pytest.approx(6.0)
        # 2 s left + 3 x 4 s, shared by two consumers
        assert capacity.estimated_wait_s(3, [idle, busy], 4.0) == pytest.approx(7.0)
        assert math.isnan(capacity.estimated_wait_s(3, [idle], None))

    def test_waiting_jobs_excludes_held_entries(self) -> None:
        """Pending entries held by live consumers are not waiting; orphaned ones are."""
        consumers = [ConsumerState("a", "busy"), ConsumerState("b", "paused: x")]
        assert capacity.waiting_jobs(lag=3, pending=2, consumers=consumers) == 3
        assert capacity.waiting_jobs(lag=3, pending=5, consumers=consumers) == 6

    def test_rates(self) -> None:
        """Arrivals over the span, service over the jobs done, resets counted as nothing."""
        then = Sample(1000.0, 10, 50.0, 10)
        assert capacity.rates(Sample(1100.0, 30, 90.0, 18), then) == capacity.Rates(
            span_s=100.0, arrivals_per_s=0.2, service_s=5.0
        )
        reset = capacity.rates(Sample(1100.0, 3, 90.0, 10), then)
        assert reset.arrivals_per_s == 0
        assert reset.service_s == 9.0  # nothing done in the window: all-time mean
        assert capacity.rates(Sample(1002.0, 30, 90.0, 18), then).span_s == 0
        assert capacity.rates(Sample(1.0, 0, 0.0, 0), None).service_s is None

    def test_memory_fit(self) -> None:
        """Unknown without measurements; counts the live workers plus what fits."""
        assert capacity.memory_fit([ConsumerState("a", "idle")], 10**9, 0) is None
        worker = ConsumerState(
            "a", "idle", rss_bytes=100 * MIB, render_rss_bytes=0, render_peak_rss_bytes=100 * MIB
        )
        fit = capacity.memory_fit([worker], available_bytes=1000 * MIB, reserve_bytes=100 * MIB)
        assert fit == capacity.MemoryFit(workers=1 + (800 // 200), peak_bytes=200 * MIB)
        crowded = capacity.memory_fit([worker], available_bytes=150 * MIB, reserve_bytes=0)
        assert crowded is not None
        assert crowded.workers == 1

    def test_host_memory_from_meminfo(self, tmp_path: Path) -> None:
        """MemTotal and MemAvailable, in bytes; None if the file says neither."""
        meminfo = tmp_path / "meminfo"
        meminfo.write_text(
            "MemTotal:        3911216 kB\nMemFree:          201456 kB\n"
            "MemAvailable:    2432100 kB\nBuffers:           81732 kB\n"
        )
        assert capacity.host_memory(meminfo) == HostMemory(
            total_bytes=3911216 * 1024, available_bytes=2432100 * 1024
        )
        meminfo.write_text("nothing useful\n")
        assert capacity.host_memory(meminfo) is None
        assert capacity.host_memory(tmp_path / "missing") is None
