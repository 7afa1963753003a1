"""Never lose: retries, delivery and attempt limits ending in dead letters, trimming and
forgetting consumers without touching a pending entry, Redis restarts. Real Redis and real
consumer processes; faults are real signals."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.admin.devredis import RedisServer
from agentlink.api import create_app
from agentlink.settings import Settings
from agentlink.stream.group import GroupMember
from agentlink.stream.keys import Keys
from tests.conftest import (
    Processes,
    submit,
    wait_for,
    wait_status,
)
from tests.support.cli import run_cli
from tests.support.consumers import orphaned_entry, pdf_count, stalled_consumer


class TestDeadLetters:
    def test_delivery_limit_moves_entry_to_dead_letters_and_replay_completes_it(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """Past AGENTLINK_MAX_DELIVERIES the entry is dead; `dlq replay` revives it."""
        job_id = submit(client)
        # Five earlier deliveries whose consumers all died: the count Redis keeps says so.
        entry_id = orphaned_entry(r, keys, earlier_deliveries=5)
        consumer = processes.consumer(settings)
        job = wait_status(r, job_id, "dead")
        assert "delivered 6 times" in job["error"]
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        [(dead_id, dead)] = r.xrange(keys.dead)
        assert dead["original_id"] == entry_id
        assert dead["job_id"] == job_id
        assert dead["deliveries"] == "6"
        assert dead["suburb"] == "Manly"
        listing = run_cli(settings, "dlq", "list")
        assert dead_id in listing.stdout
        assert job_id in listing.stdout
        replay = run_cli(settings, "dlq", "replay", dead_id)
        assert replay.returncode == 0, replay.stderr
        job = wait_status(r, job_id, "completed")
        assert r.xlen(keys.dead) == 0
        assert job["attempts"] == "1"
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(30) == 0

    @pytest.mark.parametrize(
        ("fields", "reason"),
        [
            ({"job_id": "j-1", "v": "99", "payload": "{}"}, "unknown entry schema version"),
            ({"job_id": "j-2", "v": "1", "payload": "{not json"}, "undecodable payload"),
            ({"hello": "world"}, "no job_id"),
        ],
    )
    def test_malformed_entries_go_to_dead_letters_at_once(
        self,
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
        fields: dict[str, str],
        reason: str,
    ) -> None:
        """Entries no consumer can read are dead-lettered on first sight, with the reason."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        entry_id = r.xadd(keys.stream, fields)
        processes.consumer(settings)
        [(_, dead)] = wait_for(lambda: r.xrange(keys.dead), message="dead letter")
        assert reason in dead["error"]
        assert dead["original_id"] == entry_id
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        unreplayable = run_cli(settings, "dlq", "replay", r.xrange(keys.dead)[0][0])
        assert unreplayable.returncode == 1
        assert "cannot replay" in unreplayable.stderr

    def test_purge(self, r: redis.Redis, keys: Keys, settings: Settings) -> None:
        """`dlq purge --yes` empties the dead letters."""
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        result = run_cli(settings, "dlq", "purge", "--yes")
        assert result.returncode == 0
        assert "purged 1" in result.stdout
        assert r.exists(keys.dead) == 0


class TestRetries:
    def test_transient_storage_failure_is_retried_then_completes(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """Storage that cannot write (a file blocks the folder) is retried until it can."""
        blocker = settings.output_dir / "NSW"
        blocker.parent.mkdir(parents=True)
        blocker.write_text("not a folder")
        job_id = submit(client)
        processes.consumer(replace(settings, retry_base_s=0.5, retry_max_s=1.0))
        job = wait_status(r, job_id, "retrying")
        assert "cannot write" in job["error"]
        blocker.unlink()
        job = wait_status(r, job_id, "completed")
        assert int(job["attempts"]) >= 2
        assert "cannot write" in job["errors"]
        assert pdf_count(settings) == 1

    def test_attempt_limit_ends_dead_with_history(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """A transient error that never clears is dead after AGENTLINK_MAX_ATTEMPTS."""
        blocker = settings.output_dir / "NSW"
        blocker.parent.mkdir(parents=True)
        blocker.write_text("not a folder")
        job_id = submit(client)
        processes.consumer(replace(settings, max_attempts=3))
        job = wait_status(r, job_id, "dead")
        assert job["attempts"] == "3"
        assert "gave up after 3 attempts" in job["error"]
        [(_, dead)] = r.xrange(keys.dead)
        assert dead["errors"].count("cannot write") == 3

    def test_runaway_render_is_killed_and_retried(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """A render past AGENTLINK_RENDER_TIMEOUT_S is killed; the retry runs in a fresh child."""
        # The retry renders in a fresh child, whose first render takes 1-2 s on a busy
        # machine: the limit leaves it room.
        stalled_consumer(processes, settings, AGENTLINK_RENDER_TIMEOUT_S="12")
        job_id = submit(client)
        job = wait_status(r, job_id, "completed", timeout_s=90)
        assert job["attempts"] == "2"
        assert "render killed after 12 s" in job["errors"]


class TestTrim:
    def test_trim_keeps_every_pending_and_undelivered_entry(
        self, r: redis.Redis, keys: Keys
    ) -> None:
        """XTRIM MINID removes only entries below the oldest pending one."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        ids = [r.xadd(keys.stream, {"n": str(n)}) for n in range(10)]
        r.xreadgroup(keys.group, "a", {keys.stream: ">"}, count=5)
        r.xack(keys.stream, keys.group, ids[0], ids[1], ids[3])
        removed = GroupMember(r, keys, "a").trim(retention_s=0, lock_s=60)
        assert removed == 2
        assert [i for i, _ in r.xrange(keys.stream)] == ids[2:]

    def test_trim_keeps_undelivered_entries_when_nothing_is_pending(
        self, r: redis.Redis, keys: Keys
    ) -> None:
        """With nothing pending, everything after the last delivered entry stays."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        ids = [r.xadd(keys.stream, {"n": str(n)}) for n in range(6)]
        r.xreadgroup(keys.group, "a", {keys.stream: ">"}, count=3)
        r.xack(keys.stream, keys.group, *ids[:3])
        assert GroupMember(r, keys, "a").trim(retention_s=0, lock_s=60) == 3
        assert [i for i, _ in r.xrange(keys.stream)] == ids[3:]

    def test_retention_window_keeps_recent_acked_entries(self, r: redis.Redis, keys: Keys) -> None:
        """Acked entries younger than the retention window stay for inspection."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        ids = [r.xadd(keys.stream, {"n": str(n)}) for n in range(3)]
        r.xreadgroup(keys.group, "a", {keys.stream: ">"}, count=3)
        r.xack(keys.stream, keys.group, *ids)
        assert GroupMember(r, keys, "a").trim(retention_s=3600, lock_s=60) == 0
        assert r.xlen(keys.stream) == 3


class TestRedisRestart:
    def test_outage_longer_than_a_lease_does_not_steal_live_jobs(
        self,
        client: TestClient[Any],
        fresh_redis: RedisServer,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """After a Redis outage longer than a lease, a live consumer keeps its job."""
        own = replace(settings, redis_url=fresh_redis.url)
        r = redis.Redis.from_url(fresh_redis.url, decode_responses=True)
        r.config_set("appendfsync", "always")
        _, child = stalled_consumer(processes, own, slot=1)
        processes.consumer(own, slot=2)
        with TestClient(app=create_app(own)) as api:
            job_id = submit(api)
        wait_status(r, job_id, "processing")
        fresh_redis.kill()
        time.sleep(2 * own.lease_s)  # the outage itself, longer than a lease
        restarted_s = int(time.time())
        fresh_redis.start()
        r = redis.Redis.from_url(fresh_redis.url, decode_responses=True)

        def both_beat_again() -> bool:
            beats = [r.zscore(Keys().consumers, name) for name in ("test-1", "test-2")]
            return all(beat is not None and beat >= restarted_s for beat in beats)

        wait_for(both_beat_again, message="both consumers' heartbeats after the restart")
        time.sleep(3 * own.lease_s)  # three leases with both back: consumer 2 must not reclaim
        [pending] = r.xpending_range(Keys().stream, Keys().group, "-", "+", 10)
        assert pending["consumer"] == "test-1"
        assert pending["times_delivered"] == 1
        os.kill(child, signal.SIGCONT)
        job = wait_status(r, job_id, "completed")
        assert job["attempts"] == "1"
        assert job["consumer"] == "test-1"

    def test_kill_9_redis_loses_no_accepted_job(
        self, tmp_path: Any, settings: Settings, processes: Processes
    ) -> None:
        """Redis killed -9, restarted from its AOF (fsync always): every accepted job completes."""
        server = RedisServer(tmp_path / "redis-own")
        server.start()
        try:
            client = redis.Redis.from_url(server.url, decode_responses=True)
            client.config_set("appendfsync", "always")
            own = replace(settings, redis_url=server.url)
            with TestClient(app=create_app(own)) as api:
                job_ids = [
                    submit(api, suburb=s) for s in ("Manly", "Mosman", "Bondi", "Manly", "Mosman")
                ]
            server.kill()
            server.start()
            client = redis.Redis.from_url(server.url, decode_responses=True)
            assert client.xlen(Keys().stream) == len(job_ids)
            processes.consumer(own)
            for job_id in job_ids:
                assert wait_status(client, job_id, "completed", "failed")["status"] == "completed"
            consumer_log_before = processes.log("consumer-1")
            server.kill()  # and once more while the consumer is connected
            server.start()
            with TestClient(app=create_app(own)) as api:
                late = submit(api)
            assert wait_status(client, late, "completed", timeout_s=60)["status"] == "completed"
            assert (
                "consumer.redis_unavailable"
                in processes.log("consumer-1")[len(consumer_log_before) :]
            )
        finally:
            server.kill()


class TestForgetConsumers:
    def test_only_idle_consumers_without_pending_entries_are_deleted(
        self, r: redis.Redis, keys: Keys
    ) -> None:
        """Names owning nothing are forgotten; one with a pending entry is kept, entry intact."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        r.xadd(keys.stream, {"n": "1"})
        r.xreadgroup(keys.group, "holds-one", {keys.stream: ">"}, count=1)
        r.xgroup_createconsumer(keys.stream, keys.group, "owns-nothing")
        forgotten = GroupMember(r, keys, "me").forget_idle_members(
            idle_ms=0, heartbeat_before_s=time.time() + 1
        )
        assert forgotten == ["owns-nothing"]
        assert [c["name"] for c in r.xinfo_consumers(keys.stream, keys.group)] == ["holds-one"]
        assert r.xpending(keys.stream, keys.group)["pending"] == 1

    def test_recently_beating_consumers_are_kept(self, r: redis.Redis, keys: Keys) -> None:
        """A consumer with a recent heartbeat is kept even when idle in the group."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        r.xgroup_createconsumer(keys.stream, keys.group, "alive")
        r.zadd(keys.consumers, {"alive": time.time()})
        assert (
            GroupMember(r, keys, "me").forget_idle_members(
                idle_ms=0, heartbeat_before_s=time.time() - 60
            )
            == []
        )
