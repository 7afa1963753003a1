"""``agentlink demo`` waits for its jobs through the API until each is finished."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from agentlink.admin.demo import _wait_for_jobs
from agentlink.settings import Settings
from tests.conftest import Processes, submit


class TestWaitForJobs:
    def test_a_cancelled_job_is_finished(
        self, client: TestClient[Any], settings: Settings, processes: Processes
    ) -> None:
        """A job cancelled while queued is final at once: no wait for the timeout."""
        base = processes.api(settings)
        job_id = submit(client)
        assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
        finals = _wait_for_jobs(base, {"agents": job_id}, timeout_s=20)
        assert finals["agents"]["status"] == "cancelled"
