"""Backpressure: rate limits shared by API processes, 503 when the queue or Redis memory is
too full, the wait estimate, and the service-time average the consumers feed."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.admin.devredis import RedisServer
from agentlink.api import create_app
from agentlink.api.limits import estimate_wait_s
from agentlink.jobs import Status
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome

AGENTS = "/api/generate-agents-report"
MANLY = {"suburb": "Manly", "state": "NSW"}


class TestRateLimit:
    def test_over_the_limit_is_429_with_retry_after(
        self, settings: Settings, r: redis.Redis, keys: Keys
    ) -> None:
        """The 4th request in the window is refused with Retry-After; nothing is queued."""
        limited = replace(settings, rate_limit=3, rate_limit_window_s=60)
        with TestClient(app=create_app(limited)) as client:
            answers = [client.post(AGENTS, json=MANLY) for _ in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["title"] == "Too many requests"
        assert 15 <= int(refused.headers["retry-after"]) <= 20  # one request per 20 s
        assert r.xlen(keys.stream) == 3

    def test_status_polls_count_too(self, settings: Settings) -> None:
        """Every /api/* request spends the budget; /health does not."""
        limited = replace(settings, rate_limit=2, rate_limit_window_s=60)
        with TestClient(app=create_app(limited)) as client:
            assert [client.get("/health").status_code for _ in range(5)] == [200] * 5
            codes = [client.get("/api/job-status/nope").status_code for _ in range(3)]
        assert codes == [404, 404, 429]

    def test_limit_is_shared_by_two_api_processes(self, settings: Settings) -> None:
        """Two app instances (two connection pools, as two processes have) share one budget."""
        limited = replace(settings, rate_limit=4, rate_limit_window_s=60)
        with (
            TestClient(app=create_app(limited)) as one,
            TestClient(app=create_app(limited)) as two,
        ):
            codes = [(one if i % 2 else two).post(AGENTS, json=MANLY).status_code for i in range(6)]
        assert codes == [202, 202, 202, 202, 429, 429]

    def test_each_api_key_has_its_own_budget(self, settings: Settings) -> None:
        """One tenant at its limit does not block another."""
        limited = replace(settings, rate_limit=1, rate_limit_window_s=60, api_keys=("a", "b"))
        with TestClient(app=create_app(limited)) as client:
            first_a = client.post(AGENTS, json=MANLY, headers={"X-API-Key": "a"})
            second_a = client.post(AGENTS, json=MANLY, headers={"X-API-Key": "a"})
            first_b = client.post(AGENTS, json=MANLY, headers={"X-API-Key": "b"})
        assert (first_a.status_code, second_a.status_code, first_b.status_code) == (202, 429, 202)

    def test_budget_refills(self, settings: Settings) -> None:
        """After Retry-After has passed, requests are accepted again."""
        limited = replace(settings, rate_limit=2, rate_limit_window_s=1)
        with TestClient(app=create_app(limited)) as client:
            assert client.post(AGENTS, json=MANLY).status_code == 202
            assert client.post(AGENTS, json=MANLY).status_code == 202
            refused = client.post(AGENTS, json=MANLY)
            assert refused.status_code == 429
            deadline = time.monotonic() + 30  # a token comes back every 0.5 s
            while (code := client.post(AGENTS, json=MANLY).status_code) == 429:
                assert time.monotonic() < deadline, "the budget never refilled"
                time.sleep(0.05)
        assert code == 202

    def test_zero_disables_the_limit(self, settings: Settings) -> None:
        """AGENTLINK_RATE_LIMIT=0: no limit."""
        with TestClient(app=create_app(replace(settings, rate_limit=0))) as client:
            assert {client.get("/api/job-status/x").status_code for _ in range(30)} == {404}


class TestCapacity:
    def test_memory_high_water_is_503(
        self, fresh_redis: RedisServer, settings: Settings, tmp_path: Any
    ) -> None:
        """With Redis memory past the high-water mark, new jobs get 503 + Retry-After."""
        own = replace(settings, redis_url=fresh_redis.url, redis_memory_high_water=0.5)
        admin = redis.Redis.from_url(fresh_redis.url, decode_responses=True)
        with TestClient(app=create_app(own)) as client:
            assert client.post(AGENTS, json=MANLY).status_code == 202
            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", str(int(used * 1.5)))  # used is ~67% of maxmemory
            refused = client.post(AGENTS, json=MANLY)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "60"
            assert "Redis memory at" in refused.json()["detail"]
            assert admin.xlen(Keys().stream) == 1
            admin.config_set("maxmemory", "0")
            assert client.post(AGENTS, json=MANLY).status_code == 202
        admin.close()

    def test_idempotent_repeat_is_answered_past_the_memory_high_water(
        self, fresh_redis: RedisServer, settings: Settings
    ) -> None:
        """A repeat of an accepted request gets its job back while Redis memory refuses new
        work; a new key is still refused."""
        own = replace(settings, redis_url=fresh_redis.url, redis_memory_high_water=0.5)
        admin = redis.Redis.from_url(fresh_redis.url, decode_responses=True)
        with TestClient(app=create_app(own)) as client:
            first = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "a"})
            assert first.status_code == 202
            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", str(int(used * 1.5)))
            again = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "a"})
            other = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "b"})
            admin.config_set("maxmemory", "0")
        admin.close()
        assert again.status_code == 200, again.text
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert other.status_code == 503

    def test_redis_refusing_writes_is_503_not_500(
        self, fresh_redis: RedisServer, settings: Settings
    ) -> None:
        """maxmemory reached under noeviction: Redis says OOM, the client gets a 503."""
        # Memory as read an hour ago: only Redis itself can refuse.
        own = replace(settings, redis_url=fresh_redis.url, rate_limit=0, api_cache_s=3600.0)
        admin = redis.Redis.from_url(fresh_redis.url, decode_responses=True)
        with TestClient(app=create_app(own)) as client:
            assert client.post(AGENTS, json=MANLY).status_code == 202
            admin.config_set("maxmemory", "1")
            refused = client.post(AGENTS, json=MANLY)
            admin.config_set("maxmemory", "0")
        admin.close()
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert "OOM" in refused.json()["detail"]

    def test_queue_longer_than_max_wait_is_503(
        self, settings: Settings, r: redis.Redis, keys: Keys
    ) -> None:
        """Once the estimated wait passes AGENTLINK_MAX_WAIT_S, new jobs are refused clearly."""
        r.hset(keys.service_stats, mapping={"ewma_s": "10"})
        strict = replace(settings, max_wait_s=25)
        with TestClient(app=create_app(strict)) as client:
            codes = [client.post(AGENTS, json=MANLY).status_code for _ in range(4)]
            refused = client.post(AGENTS, json=MANLY)
        # Waits 0, 10, 20 s are fine; the 4th job would wait 30 s > 25 s.
        assert codes == [202, 202, 202, 503]
        assert refused.status_code == 503
        assert "wait about 30 s" in refused.json()["detail"]
        assert "AGENTLINK_MAX_WAIT_S" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 5
        assert r.xlen(keys.stream) == 3

    def test_idempotent_repeat_is_answered_even_when_full(
        self, settings: Settings, r: redis.Redis, keys: Keys
    ) -> None:
        """A repeat of an accepted request gets its job back though new work is refused."""
        r.hset(keys.service_stats, mapping={"ewma_s": "100"})
        strict = replace(settings, max_wait_s=50)
        with TestClient(app=create_app(strict)) as client:
            first = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "a"})
            client.post(AGENTS, json={"suburb": "Mosman", "state": "NSW"})
            assert client.post(AGENTS, json={"suburb": "Bondi", "state": "NSW"}).status_code == 503
            again = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "a"})
        assert again.status_code == 200
        assert again.json()["job_id"] == first.json()["job_id"]


class TestWaitEstimate:
    @pytest.mark.parametrize(
        ("ahead", "service_s", "consumers", "expected"),
        [
            (0, 4.0, 2, 0),
            (3, 4.0, 1, 12),
            (3, 4.0, 2, 6),
            (3, 4.0, 0, 12),  # no live consumer: assume one will come back
            (2, None, 1, 10),  # no completed job yet: 5 s assumed
        ],
    )
    def test_estimate(
        self, ahead: int, service_s: float | None, consumers: int, expected: int
    ) -> None:
        """Entries ahead x mean service time / live consumers, rounded up."""
        assert estimate_wait_s(ahead, service_s, consumers) == expected

    def test_answer_uses_service_time_and_live_consumers(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The 202 carries the estimate from Redis: average service time, live heartbeats."""
        r.hset(keys.service_stats, mapping={"ewma_s": "8"})
        now = time.time()
        r.zadd(keys.consumers, {"a-1": now, "a-2": now, "gone-1": now - 3600})
        answers = [client.post(AGENTS, json=MANLY).json() for _ in range(3)]
        assert [a["position"] for a in answers] == [0, 1, 2]
        assert [a["estimated_wait_s"] for a in answers] == [0, 4, 8]

    def test_pending_entries_count_as_ahead(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Entries a consumer holds are still ahead of a new job."""
        client.post(AGENTS, json=MANLY)
        client.post(AGENTS, json=MANLY)
        r.xreadgroup(keys.group, "c-1", {keys.stream: ">"}, count=1)
        answer = client.post(AGENTS, json=MANLY).json()
        assert answer["position"] == 2


class TestServiceTime:
    def test_completion_feeds_the_moving_average(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The outcome script turns the service time the consumer measured into the EWMA."""
        records = JobRecords(r, keys, "c-1")
        for seconds in (4.0, 2.0):
            job_id = client.post(AGENTS, json=MANLY).json()["job_id"]
            [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, "c-1", {keys.stream: ">"}, count=1)
            done = Outcome(Status.COMPLETED, {"finished_at": "2026-11-27T00:00:00.000+00:00"}, [])
            assert records.finish(entry_id, job_id, 3600, done, service_s=seconds)[0]
        stats = r.hgetall(keys.service_stats)
        assert stats["samples"] == "2"
        assert stats["last_s"] == "2.000"
        assert float(stats["ewma_s"]) == pytest.approx(0.2 * 2 + 0.8 * 4)

    def test_failed_jobs_do_not_count(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A job that failed at once says nothing about how long a report takes."""
        records = JobRecords(r, keys, "c-1")
        job_id = client.post(AGENTS, json=MANLY).json()["job_id"]
        [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, "c-1", {keys.stream: ">"}, count=1)
        failed = Outcome(Status.FAILED, {"finished_at": "2026-11-26T10:00:01.000+00:00"}, [])
        assert records.finish(entry_id, job_id, 3600, failed, service_s=1.0)[0]
        assert not r.exists(keys.service_stats)
