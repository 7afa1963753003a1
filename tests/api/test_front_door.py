"""The front door under load: bursts are queued whole, an exhausted pool is "busy", /health
stays truthful, and slow clients cannot hold connections.

These tests run the real ``agentlink api`` process (uvicorn, uvloop, httptools) against
the session's private Redis, with many simultaneous connections.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest
import redis

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes, wait_for

MANLY = {"suburb": "Manly", "state": "NSW"}
AGENTS = "/api/generate-agents-report"


def _two_busy_workers(r: redis.Redis, keys: Keys) -> None:
    """Backpressure as in production: two live consumers, half a second per report, so
    AGENTLINK_MAX_WAIT_S (an hour) allows 14,400 jobs ahead of a new one."""
    r.hset(keys.service_stats, mapping={"ewma_s": "0.5"})
    now = time.time() + 3600  # heartbeats that stay fresh for the whole test
    r.zadd(keys.consumers, {"w-1": now, "w-2": now})


async def _burst(base: str, count: int, headers: dict[str, str]) -> list[httpx.Response]:
    """``count`` POSTs at once, each on its own connection."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        return await asyncio.gather(
            *(
                client.post(AGENTS, json=MANLY, headers={**headers, "Idempotency-Key": f"b-{i}"})
                for i in range(count)
            )
        )


class TestBurst:
    @pytest.mark.slow
    def test_a_thousand_simultaneous_posts_are_all_queued(
        self, settings: Settings, processes: Processes, r: redis.Redis, keys: Keys
    ) -> None:
        """1,000 concurrent POSTs through a pool of 4 Redis connections: 1,000 x 202 and
        1,000 entries; requests wait for a connection instead of being refused."""
        _two_busy_workers(r, keys)
        base = processes.api(
            settings,
            AGENTLINK_API_KEYS="k",
            AGENTLINK_REDIS_POOL_SIZE="4",
            AGENTLINK_RATE_LIMIT="100000",
        )
        answers = asyncio.run(_burst(base, 1000, {"X-API-Key": "k"}))
        codes = [a.status_code for a in answers]
        assert codes.count(202) == 1000, {c: codes.count(c) for c in set(codes)}
        assert r.xlen(keys.stream) == 1000
        assert len({a.json()["job_id"] for a in answers}) == 1000

    @pytest.mark.slow
    def test_health_stays_ok_during_a_burst(
        self, settings: Settings, processes: Processes, r: redis.Redis, keys: Keys
    ) -> None:
        """/health answers 200 "ok" while hundreds of submissions wait for connections."""
        _two_busy_workers(r, keys)
        base = processes.api(settings, AGENTLINK_REDIS_POOL_SIZE="2", AGENTLINK_RATE_LIMIT="0")

        async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
            burst = asyncio.ensure_future(_burst(base, 500, {}))
            checks = []
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                while not burst.done():
                    checks.append(await client.get("/health"))
            return await burst, checks

        answers, checks = asyncio.run(run())
        assert [a.status_code for a in answers].count(202) == 500
        assert checks, "the burst ended before /health was asked"
        assert {(c.status_code, c.json()["redis"]) for c in checks} <= {(200, "ok"), (200, "busy")}


class TestPoolExhaustion:
    def test_a_wait_that_runs_out_is_busy_not_unreachable(
        self, settings: Settings, processes: Processes, r: redis.Redis
    ) -> None:
        """A request Redis keeps waiting holds the round trip: the requests queued behind it
        get 503 "busy" with Retry-After once AGENTLINK_REDIS_POOL_WAIT_S has passed, never
        "unreachable"; the held one is answered when Redis moves again."""
        base = processes.api(settings, AGENTLINK_REDIS_POOL_WAIT_S="0.5", AGENTLINK_RATE_LIMIT="0")
        r.execute_command("CLIENT", "PAUSE", "4000", "WRITE")  # 8x the wait

        async def run() -> tuple[httpx.Response, list[httpx.Response], httpx.Response]:
            limits = httpx.Limits(max_connections=10)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
                held = asyncio.ensure_future(client.post(AGENTS, json=MANLY))
                deadline = time.monotonic() + 30
                while int((await asyncio.to_thread(r.info, "clients"))["blocked_clients"]) < 1:
                    assert time.monotonic() < deadline, "the first request never reached Redis"
                    await asyncio.sleep(0.01)
                queued = await asyncio.gather(*(client.post(AGENTS, json=MANLY) for _ in range(4)))
                health = await client.get("/health")
                return await held, queued, health

        try:
            held, queued, health = asyncio.run(run())
        finally:
            r.execute_command("CLIENT", "UNPAUSE")
        assert held.status_code == 202
        assert [q.status_code for q in queued] == [503] * 4
        for refused in queued:
            assert "busy" in refused.json()["detail"]
            assert "unreachable" not in refused.json()["detail"]
            assert refused.headers["retry-after"] == "1"
        assert health.status_code == 200

    def test_redis_down_is_still_unreachable(
        self, settings: Settings, processes: Processes, fresh_redis: Any
    ) -> None:
        """A stopped Redis is 503 "unreachable" and /health says down."""
        from dataclasses import replace

        own = replace(settings, redis_url=fresh_redis.url)
        base = processes.api(own, AGENTLINK_RATE_LIMIT="0")
        fresh_redis.kill()
        answer = httpx.post(f"{base}{AGENTS}", json=MANLY, timeout=30)
        assert answer.status_code == 503
        assert "unreachable" in answer.json()["detail"]
        health = wait_for(
            lambda: (h := httpx.get(f"{base}/health", timeout=30)).status_code == 503 and h,
            30,
            "/health to notice Redis is down",
        )
        assert health.json() == {"status": "unavailable", "redis": "down"}


class TestSlowClients:
    def _connect(self, base: str) -> socket.socket:
        host, port = base.removeprefix("http://").split(":")
        return socket.create_connection((host, int(port)), timeout=30)

    def test_trickled_headers_are_cut_off(self, settings: Settings, processes: Processes) -> None:
        """Header lines sent one at a time, forever: the server answers 408 and closes once
        AGENTLINK_HEADER_TIMEOUT_S has passed."""
        base = processes.api(settings, AGENTLINK_HEADER_TIMEOUT_S="1")
        received = b""
        with self._connect(base) as sock:
            sock.sendall(b"POST /api/generate-agents-report HTTP/1.1\r\nHost: x\r\n")
            deadline = time.monotonic() + 30  # 30x the header deadline
            sock.settimeout(0.2)
            while time.monotonic() < deadline:
                if not received:  # trickle until the server answers
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        break  # the server closed the connection
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                received += chunk
            else:
                pytest.fail("the connection stayed open for 30 s")
        assert received.startswith(b"HTTP/1.1 408"), received

    def test_a_silent_connection_is_closed(self, settings: Settings, processes: Processes) -> None:
        """A connection that never sends a byte is closed after the header deadline."""
        base = processes.api(settings, AGENTLINK_HEADER_TIMEOUT_S="1")
        with self._connect(base) as sock:
            sock.settimeout(30)  # 30x the header deadline
            assert sock.recv(4096) == b""

    def test_keep_alive_requests_still_work(self, settings: Settings, processes: Processes) -> None:
        """A client sending complete requests on one connection is not cut off."""
        base = processes.api(settings, AGENTLINK_HEADER_TIMEOUT_S="1")
        with httpx.Client(base_url=base, timeout=30) as client:
            codes = [client.get("/health").status_code for _ in range(20)]
        assert codes == [200] * 20
