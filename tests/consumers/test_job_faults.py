"""A report job meeting faults at awkward moments: a cancel during the retry back-off,
Redis away when an attempt starts or right before storing, a shutdown past its grace with
Redis away. A real consumer in a thread of the test, against real Redis; the render and the
storage are the test's (``tests/support/injected.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.errors import StorageUnavailableError
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from consumers.outcomes import CANCELLED_ERROR
from tests.conftest import submit, wait_status
from tests.support.injected import HeldRenderer, ScriptedStorage, consumer_with

AGENTS = "/api/generate-agents-report"
CALLBACK_URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    """Settings under which a job may carry a callback to 127.0.0.1."""
    return replace(settings, callback_hosts=("127.0.0.1",), callback_allow_insecure=True)


@pytest.fixture
def api(hooked: Settings) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(hooked)) as client:
        yield client


class TestCancelDuringBackoff:
    def test_cancel_while_waiting_to_retry_ends_the_job_cancelled(
        self, api: TestClient[Any], r: redis.Redis, keys: Keys, hooked: Settings
    ) -> None:
        """A transient storage error, then a cancel during the back-off (30 s or more): the
        job ends cancelled with the XACK and its callback; the consumer takes the next job."""
        storage = ScriptedStorage(StorageUnavailableError("storage answered 503"))
        slow_retries = replace(hooked, retry_base_s=60.0, retry_max_s=120.0)
        worker = consumer_with(slow_retries, HeldRenderer(), storage).start()
        try:
            answer = api.post(
                AGENTS, json={"suburb": "Manly", "state": "NSW", "callback_url": CALLBACK_URL}
            )
            job_id = answer.json()["job_id"]
            wait_status(r, job_id, "retrying")
            assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 200
            job = wait_status(r, job_id, "cancelled", "completed", "failed", "dead", timeout_s=20)
            assert job["status"] == "cancelled"
            assert job["error"] == CANCELLED_ERROR
            assert r.xpending(keys.stream, keys.group)["pending"] == 0
            [(_, callback)] = r.xrange(keys.callbacks.stream)
            assert (callback["job_id"], callback["status"]) == (job_id, "cancelled")
            assert worker.result is None  # still running
            following = submit(api)
            assert wait_status(r, following, "completed", "failed", "dead")["status"] == "completed"
        finally:
            result = worker.stop()
        assert result == 0
        assert len(storage.saved) == 1  # the following job's; the cancelled one stored nothing
