"""The benchmark's no-op consumer: the real consumer with an injected renderer and storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis
from litestar.testing import TestClient

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes, settings_env, submit, wait_status


class TestInjectedRenderer:
    def test_consumer_uses_the_given_renderer_and_storage(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
        tmp_path: Path,
    ) -> None:
        """A Consumer built with renderer= and storage= completes jobs through them alone."""
        events = tmp_path / "events.jsonl"
        job_ids = [submit(client), submit(client, kind="agency")]
        processes.start(
            ["-m", "bench.noop_consumer", "--slot", "1", "--events", str(events)],
            settings_env(settings),
            "noop-1",
        )
        jobs = [wait_status(r, job_id, "completed") for job_id in job_ids]
        assert {job["result_storage"] for job in jobs} == {"null"}
        assert {job["result_bytes"] for job in jobs} == {"0"}
        assert {job["consumer"] for job in jobs} == {"test-1"}
        started = [json.loads(line)["job"] for line in events.read_text().splitlines()]
        assert started == job_ids
        assert not settings.output_dir.exists() or not any(settings.output_dir.rglob("*.pdf"))
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
