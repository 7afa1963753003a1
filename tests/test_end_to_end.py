"""End to end, as a user runs it: `agentlink api` and `agentlink worker --concurrency 2` as
processes, requests over real HTTP."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes, children_of, settings_env, wait_for

SUBURBS = [
    ("Manly", "NSW"),
    ("Mosman", "NSW"),
    ("Bondi", "NSW"),
    ("Fitzroy", "VIC"),
    ("Paddington", "QLD"),
]


def start_stack(processes: Processes, settings: Settings) -> tuple[str, Any]:
    """Start the API and a two-consumer worker; returns the API's base URL and the worker."""
    base = processes.api(settings)
    worker = processes.start(
        ["-m", "agentlink", "worker", "--concurrency", "2"], settings_env(settings), "worker"
    )
    return base, worker


def final_status(base: str, job_id: str) -> dict[str, Any] | None:
    record: dict[str, Any] = httpx.get(f"{base}/api/job-status/{job_id}", timeout=5).json()
    return record if record["status"] in {"completed", "failed", "dead"} else None


class TestEndToEnd:
    def test_concurrent_requests_all_complete(
        self, r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """24 concurrent POSTs over HTTP: every one is accepted, completed, stored; none lost."""
        base, worker = start_stack(processes, settings)
        requests = [
            (kind, suburb, state) for kind in ("agents", "agency") for suburb, state in SUBURBS
        ] * 2 + [("agents", "Manly", "NSW")] * 4

        def post(item: tuple[str, str, str]) -> str:
            kind, suburb, state = item
            response = httpx.post(
                f"{base}/api/generate-{kind}-report",
                json={"suburb": suburb, "state": state},
                timeout=10,
            )
            assert response.status_code == 202, response.text
            return str(response.json()["job_id"])

        with ThreadPoolExecutor(max_workers=12) as pool:
            job_ids = list(pool.map(post, requests))
        assert len(set(job_ids)) == len(requests)
        records = [wait_for(lambda j=j: final_status(base, j), 180, f"job {j}") for j in job_ids]
        assert [rec["status"] for rec in records] == ["completed"] * len(requests)
        paths = {rec["result"]["path"] for rec in records}
        assert len(paths) == len(requests)
        assert all((settings.output_dir / p).is_file() for p in paths)
        consumers_used = {rec["consumer"] for rec in records}
        assert consumers_used == {"test-1", "test-2"}
        keys = Keys()
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        assert r.xinfo_groups(keys.stream)[0]["lag"] == 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0

    def test_worker_restarts_a_killed_consumer(
        self, r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """`agentlink worker` restarts a consumer process that died, under the same name."""
        base, worker = start_stack(processes, settings)
        wait_for(lambda: len(children_of(worker.pid)) == 2, 30, "two consumer processes")
        victim = children_of(worker.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len(children_of(worker.pid)) == 2 and victim not in children_of(worker.pid),
            30,
            "a replacement consumer",
        )
        response = httpx.post(
            f"{base}/api/generate-agents-report",
            json={"suburb": "Manly", "state": "NSW"},
            timeout=10,
        )
        job_id = response.json()["job_id"]
        record = wait_for(lambda: final_status(base, job_id), 120, "the job")
        assert record["status"] == "completed"
        assert "worker.child_died" in processes.log("worker")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
