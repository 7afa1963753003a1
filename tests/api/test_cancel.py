"""Cancelling a job: ``POST /api/jobs/{job_id}/cancel`` and ``agentlink cancel``. A queued
job is cancelled at once and never made; a running one is stopped by its real consumer,
stores nothing, and its callback says ``cancelled``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from consumers.outcomes import CANCELLED_ERROR
from tests.conftest import Processes, job_hash, submit, wait_for, wait_status
from tests.support.callbacks import Receiver
from tests.support.cli import run_cli
from tests.support.consumers import stalled_consumer

AGENTS = "/api/generate-agents-report"
A = {"X-API-Key": "key-of-agency-a"}
B = {"X-API-Key": "key-of-agency-b"}
OPS = {"Authorization": "Bearer operator-key"}


@pytest.fixture
def tenants(settings: Settings) -> Iterator[TestClient[Any]]:
    """The API with two tenant keys and one operator key."""
    keyed = replace(
        settings, api_keys=("key-of-agency-a", "key-of-agency-b"), operator_keys=("operator-key",)
    )
    with TestClient(app=create_app(keyed)) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver answering 200."""
    running = Receiver()
    running.start()
    yield running
    running.stop()


def _submit(client: TestClient[Any], headers: dict[str, str]) -> str:
    answer = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


def _events(record: dict[str, Any]) -> list[str]:
    return [event["event"] for event in record["events"]]


def _pdfs(settings: Settings) -> list[Path]:
    return list(settings.output_dir.rglob("*.pdf")) if settings.output_dir.exists() else []


class TestCancelQueued:
    def test_cancelled_at_once_and_never_made(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """200 with the cancelled record; a consumer then only acks the entry: no PDF."""
        job_id = submit(client)
        answer = client.post(f"/api/jobs/{job_id}/cancel")
        assert answer.status_code == 200, answer.text
        record = answer.json()
        assert (record["status"], record["attempts"]) == ("cancelled", 0)
        assert record["error"] == "cancelled by the API before it was made"
        assert _events(record) == ["accepted", "cancelled"]
        processes.consumer(settings)
        wait_for(
            lambda: (
                r.xpending(keys.stream, keys.group)["pending"] == 0
                and r.xinfo_groups(keys.stream)[0]["lag"] == 0
                and r.xinfo_groups(keys.stream)[0]["entries-read"] == 1
            ),
            30,
            "the consumer to read and ack the entry",
        )
        assert job_hash(r, job_id)["status"] == "cancelled"
        assert job_hash(r, job_id)["attempts"] == "0"
        assert not _pdfs(settings)

    def test_a_finished_job_is_409(self, client: TestClient[Any]) -> None:
        """Once cancelled (or otherwise finished) there is nothing left to cancel."""
        job_id = submit(client)
        assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
        again = client.post(f"/api/jobs/{job_id}/cancel")
        assert again.status_code == 409
        assert again.json()["detail"] == (
            f"job {job_id} is cancelled already: there is nothing left to cancel"
        )

    def test_an_unknown_job_is_404(self, client: TestClient[Any]) -> None:
        """No such job: 404, as for reading it."""
        assert client.post("/api/jobs/no-such-job/cancel").status_code == 404


class TestCancelTenancy:
    def test_another_tenant_gets_404_and_nothing_changes(
        self, tenants: TestClient[Any], r: redis.Redis
    ) -> None:
        """Key B cannot cancel key A's job: 404, the job stays queued."""
        job_id = _submit(tenants, A)
        assert tenants.post(f"/api/jobs/{job_id}/cancel", headers=B).status_code == 404
        assert job_hash(r, job_id)["status"] == "queued"
        assert tenants.post(f"/api/jobs/{job_id}/cancel", headers=A).status_code == 200

    def test_an_operator_key_cancels_any_job(self, tenants: TestClient[Any]) -> None:
        """Operator keys may cancel every tenant's jobs; the record names the key's digest."""
        job_id = _submit(tenants, A)
        answer = tenants.post(f"/api/jobs/{job_id}/cancel", headers=OPS)
        assert answer.status_code == 200
        assert answer.json()["error"].startswith("cancelled by API key key-")
        assert "operator-key" not in answer.text

    def test_without_a_key_401(self, tenants: TestClient[Any]) -> None:
        """Cancel needs a key like every /api route."""
        job_id = _submit(tenants, A)
        assert tenants.post(f"/api/jobs/{job_id}/cancel").status_code == 401


class TestCancelRunning:
    def test_stopped_by_its_consumer_nothing_stored_callback_cancelled(
        self,
        settings: Settings,
        r: redis.Redis,
        keys: Keys,
        processes: Processes,
        receiver: Receiver,
    ) -> None:
        """A render held (SIGSTOP) is killed within a few seconds of the cancel; the job
        ends cancelled with the XACK, no PDF is stored, and the callback says cancelled."""
        allowed = replace(settings, callback_hosts=("127.0.0.1",), callback_allow_insecure=True)
        consumer_env = {
            "AGENTLINK_CALLBACK_HOSTS": "127.0.0.1",
            "AGENTLINK_CALLBACK_ALLOW_INSECURE": "true",
            "AGENTLINK_RENDER_TIMEOUT_S": "600",
        }
        _, child = stalled_consumer(processes, settings, **consumer_env)
        with TestClient(app=create_app(allowed)) as client:
            answer = client.post(
                AGENTS, json={"suburb": "Manly", "state": "NSW", "callback_url": receiver.url}
            )
            job_id = answer.json()["job_id"]
            wait_status(r, job_id, "processing")
            cancel = client.post(f"/api/jobs/{job_id}/cancel")
        assert cancel.status_code == 200
        assert cancel.json()["status"] == "processing"
        assert cancel.json()["cancel_requested"]
        job = wait_status(r, job_id, "cancelled", timeout_s=30)
        assert job["error"] == CANCELLED_ERROR
        wait_for(lambda: not _alive(child), 30, "the held render child to be killed")
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        assert not _pdfs(settings)
        assert "result_path" not in job
        wait_for(lambda: receiver.received, 30, "the cancelled job's callback")
        [got] = receiver.received
        assert (got.record["job_id"], got.record["status"]) == (job_id, "cancelled")
        timeline = [event["event"] for event in json.loads(job["events"])]
        assert timeline[0] == "claimed"
        assert timeline[-1] == "cancelled"
        assert "cancel_requested" in timeline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


class TestCancelCli:
    def test_by_prefix_then_finished(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings
    ) -> None:
        """`agentlink cancel <8 chars>` cancels a queued job; a second time it exits 1."""
        job_id = submit(client)
        done = run_cli(settings, "cancel", job_id[:8])
        assert done.returncode == 0, done.stderr
        expected = f"cancelled job {job_id}: it was queued and will never be made"
        assert done.stdout.strip() == expected
        assert job_hash(r, job_id)["status"] == "cancelled"
        assert "by agentlink cancel" in job_hash(r, job_id)["events"]
        again = run_cli(settings, "cancel", job_id)
        assert again.returncode == 1
        assert f"job {job_id} is cancelled already" in again.stderr

    def test_a_running_job_gets_a_request(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """A processing job: the CLI says its worker stops it; the hash carries the request."""
        job_id = submit(client)
        r.hset(keys.job(job_id), "status", "processing")
        done = run_cli(settings, "cancel", job_id)
        assert done.returncode == 0, done.stderr
        assert "cancel requested" in done.stdout
        assert r.hexists(keys.job(job_id), "cancel_requested")

    def test_unknown_job(self, r: redis.Redis, settings: Settings) -> None:
        """No such job: exit 1 naming it."""
        done = run_cli(settings, "cancel", "0123456789abcdef")
        assert done.returncode == 1
        assert "no job 0123456789abcdef" in done.stderr
