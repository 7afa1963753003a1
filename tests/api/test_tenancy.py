"""Tenancy: a job is visible only to the API key that created it (operator keys see all);
failed authentications are rate-limited per address; the PDF route's answers say what
will happen, without server paths."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.jobs import Status
from agentlink.settings import Settings
from agentlink.stream.deadletters import DeadLetters
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome

AGENTS = "/api/generate-agents-report"
MANLY = {"suburb": "Manly", "state": "NSW"}
A = {"X-API-Key": "key-of-agency-a"}
B = {"X-API-Key": "key-of-agency-b"}
OPS = {"Authorization": "Bearer operator-key"}


@pytest.fixture
def tenants(settings: Settings) -> Iterator[TestClient[Any]]:
    """The API with two tenant keys and one operator key."""
    keyed = replace(
        settings,
        api_keys=("key-of-agency-a", "key-of-agency-b"),
        operator_keys=("operator-key",),
        auth_failure_limit=3,
    )
    with TestClient(app=create_app(keyed)) as client:
        yield client


def _submit(client: TestClient[Any], headers: dict[str, str], **extra: str) -> str:
    answer = client.post(AGENTS, json=MANLY, headers={**headers, **extra})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


class TestOwnership:
    def test_another_key_sees_404(self, tenants: TestClient[Any]) -> None:
        """Key B cannot read key A's job: the status and the PDF are 404, as for no job."""
        job_id = _submit(tenants, A)
        assert tenants.get(f"/api/job-status/{job_id}", headers=A).status_code == 200
        status = tenants.get(f"/api/job-status/{job_id}", headers=B)
        pdf = tenants.get(f"/api/jobs/{job_id}/pdf", headers=B)
        unknown = tenants.get("/api/job-status/no-such-job", headers=B)
        assert (status.status_code, pdf.status_code) == (404, 404)
        assert status.json()["detail"] == unknown.json()["detail"].replace("no-such-job", job_id)

    def test_operator_key_sees_every_job(self, tenants: TestClient[Any]) -> None:
        """An operator key reads the jobs of every tenant, idempotency key included."""
        job_id = _submit(tenants, A, **{"Idempotency-Key": "make-run-17"})
        record = tenants.get(f"/api/job-status/{job_id}", headers=OPS)
        assert record.status_code == 200
        assert record.json()["idempotency_key"] == "make-run-17"

    def test_operator_key_submits_too(self, tenants: TestClient[Any]) -> None:
        """Operator keys are API keys as well."""
        assert tenants.post(AGENTS, json=MANLY, headers=OPS).status_code == 202

    def test_jobs_without_an_owner_stay_readable(
        self, tenants: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A job recorded before owners were (no `owner` field) is readable by every key."""
        job_id = _submit(tenants, A)
        r.hdel(keys.job(job_id), "owner")
        assert tenants.get(f"/api/job-status/{job_id}", headers=B).status_code == 200

    def test_the_owner_is_a_digest_not_the_key(
        self, tenants: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The job hash names its owner by a digest; the key itself is stored nowhere."""
        job_id = _submit(tenants, A)
        owner = r.hget(keys.job(job_id), "owner")
        assert owner is not None
        assert owner.startswith("key-")
        dump = str([r.hgetall(k) for k in r.keys("*") if r.type(k) == "hash"])
        assert "key-of-agency-a" not in dump

    def test_a_replayed_dead_letter_keeps_its_owner(
        self, tenants: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A dead letter replayed after its job's record expired is rebuilt as its creator's
        job: the creator reads it (request id included), another key gets 404, and it is in
        the dashboard's indexes again."""
        job_id = _submit(tenants, A, **{"X-Request-ID": "make-run-3"})
        [[_, [(entry_id, fields)]]] = r.xreadgroup(keys.group, "c-1", {keys.stream: ">"}, count=1)
        outcome = Outcome(Status.DEAD, {"finished_at": "t"}, [])
        dead_id = JobRecords(r, keys, "c-1").dead_letter(entry_id, job_id, 1, fields, outcome)
        r.delete(keys.job(job_id))
        JobRecords(r, keys, "c-1").prune(before_ms=int(time.time() * 1000) + 1)
        assert DeadLetters(r, keys).replay(dead_id)
        record = tenants.get(f"/api/job-status/{job_id}", headers=A)
        assert record.status_code == 200, record.text
        assert (record.json()["status"], record.json()["request_id"]) == ("queued", "make-run-3")
        assert tenants.get(f"/api/job-status/{job_id}", headers=B).status_code == 404
        assert r.zrange(keys.jobs, 0, -1) == [job_id]
        assert r.zrange(keys.jobs_with_status("queued"), 0, -1) == [job_id]
        assert r.zrange(keys.jobs_of_suburb("NSW", "manly"), 0, -1) == [job_id]
        assert r.zrange(keys.job_ids, 0, -1) == [job_id]

    def test_idempotency_keys_are_per_tenant(self, tenants: TestClient[Any]) -> None:
        """The same Idempotency-Key from two tenants makes two jobs."""
        one = _submit(tenants, A, **{"Idempotency-Key": "same"})
        two = _submit(tenants, B, **{"Idempotency-Key": "same"})
        assert one != two


class TestFailedAuthentications:
    def test_a_401_storm_becomes_429(self, tenants: TestClient[Any]) -> None:
        """Past AGENTLINK_AUTH_FAILURE_LIMIT failures a minute, an address gets 429 with
        Retry-After instead of 401."""
        codes = [
            tenants.get("/api/job-status/x", headers={"X-API-Key": "guess"}).status_code
            for _ in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]
        refused = tenants.get("/api/job-status/x", headers={"X-API-Key": "guess"})
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "failed authentications" in refused.json()["detail"]

    def test_a_valid_key_still_gets_through(self, tenants: TestClient[Any]) -> None:
        """Failures from an address do not lock out a caller with a valid key there."""
        for _ in range(5):
            tenants.get("/api/job-status/x")
        assert tenants.post(AGENTS, json=MANLY, headers=A).status_code == 202


class TestPdfAnswers:
    def test_a_failed_job_has_no_pdf_and_never_will(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """410 Gone for a failed job, saying so and why."""
        job_id = client.post(AGENTS, json=MANLY).json()["job_id"]
        r.hset(keys.job(job_id), mapping={"status": Status.FAILED.value, "error": "no sales"})
        answer = client.get(f"/api/jobs/{job_id}/pdf")
        assert answer.status_code == 410
        assert "never" in answer.json()["detail"]
        assert "no sales" in answer.json()["detail"]

    def test_an_unfinished_job_says_to_wait(self, client: TestClient[Any]) -> None:
        """409 while the job is queued, telling the caller to poll."""
        job_id = client.post(AGENTS, json=MANLY).json()["job_id"]
        answer = client.get(f"/api/jobs/{job_id}/pdf")
        assert answer.status_code == 409
        assert "poll" in answer.json()["detail"]

    def test_a_missing_file_names_no_server_path(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """404 "gone" for a completed job whose file was removed; no path in the answer."""
        job_id = client.post(AGENTS, json=MANLY).json()["job_id"]
        r.hset(
            keys.job(job_id),
            mapping={
                "status": Status.COMPLETED.value,
                "result_storage": "local",
                "result_path": "NSW/manly/2026-11-30/agents-gone.pdf",
            },
        )
        answer = client.get(f"/api/jobs/{job_id}/pdf")
        assert answer.status_code == 404
        detail = answer.json()["detail"]
        assert "gone" in detail
        assert str(settings.output_dir) not in detail
        assert str(Path(settings.output_dir).parent) not in detail
        assert "/" not in detail.replace(f"/api/jobs/{job_id}/pdf", "")
