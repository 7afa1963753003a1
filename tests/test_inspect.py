"""`agentlink inspect` and `agentlink job`: what an operator sees."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import redis
from litestar.testing import TestClient

from agentlink.settings import Settings
from agentlink.streams import Keys
from tests.conftest import Processes, submit, wait_status
from tests.test_reliability import run_cli


class TestInspect:
    def test_json_snapshot_reports_backlog_pending_and_consumers(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """Lag, pending entries with their job, consumers and recent statuses, as JSON."""
        job_ids = [submit(client, suburb=s) for s in ("Manly", "Mosman", "Bondi")]
        r.xreadgroup(keys.group, "host-1", {keys.stream: ">"}, count=1)
        r.zadd(keys.consumers, {"host-1": time.time()})
        r.hset(keys.consumer("host-1"), mapping={"state": "busy", "job": job_ids[0]})
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        result = run_cli(settings, "inspect", "--json")
        assert result.returncode == 0, result.stderr
        snap = json.loads(result.stdout)
        assert snap["length"] == 3
        assert snap["lag"] == 2
        assert snap["pending"] == 1
        assert snap["dead_letters"] == 1
        assert 0 <= snap["oldest_pending_age_s"] < 60
        [pending] = snap["pending_entries"]
        assert pending["consumer"] == "host-1"
        assert pending["job_id"] == job_ids[0]
        assert pending["deliveries"] == 1
        [consumer] = snap["consumers"]
        assert consumer["name"] == "host-1"
        assert consumer["live"] is True
        assert consumer["job"] == job_ids[0]
        assert snap["recent_jobs"] == {"queued": 3}

    def test_text_output_names_what_to_do(
        self, r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """The terminal view says when no consumer runs and where dead letters are."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        result = run_cli(settings, "inspect")
        assert result.returncode == 0, result.stderr
        assert "no consumers" in result.stdout
        assert "agentlink dlq list" in result.stdout

    def test_real_activity_reads_at_80_columns(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """Completed, failed, pending and dead jobs from a real consumer, in 80 columns."""
        consumer = processes.consumer(settings)
        done = submit(client)
        failed = submit(client, suburb="Atlantis")
        wait_status(r, done, "completed")
        wait_status(r, failed, "failed")
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(30) == 0
        held = submit(client, suburb="Mosman")
        r.xreadgroup(keys.group, "a-rather-long-consumer-name-on-host-42", {keys.stream: ">"})
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        result = run_cli(settings, "inspect")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, result.stdout
        text = result.stdout
        assert "test-1" in text
        assert held[:8] in text
        assert "completed 1" in text
        assert "failed 1" in text
        assert "1 dead letter(s)" in text
        assert "1 pending" in text

    def test_empty_redis(self, settings: Settings, redis_url: str) -> None:
        """Before anything was queued, inspect still answers."""
        result = run_cli(settings, "inspect", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["length"] == 0


class TestJobCommand:
    def test_prints_the_record(self, client: TestClient[Any], settings: Settings) -> None:
        """`agentlink job <id>` prints the status record as JSON."""
        job_id = submit(client)
        result = run_cli(settings, "job", job_id)
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout)
        assert record["job_id"] == job_id
        assert record["status"] == "queued"

    def test_unknown_job_exits_1(self, settings: Settings, redis_url: str) -> None:
        """An unknown job id is an error."""
        result = run_cli(settings, "job", "nope")
        assert result.returncode == 1
        assert "no job nope" in result.stderr
