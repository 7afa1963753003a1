"""Idempotency keys: a repeated request returns its job, a reused key with another body is a
409, and concurrent repeats queue exactly one job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes

AGENTS = "/api/generate-agents-report"
AGENCY = "/api/generate-agency-report"
MANLY = {"suburb": "Manly", "state": "NSW"}


def idempotency_keys(r: redis.Redis) -> list[str]:
    return sorted(r.scan_iter("agentlink:idem:*"))  # type: ignore[arg-type]


class TestRepeats:
    def test_same_key_same_body_returns_the_same_job(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The repeat answers 200 with the first job's id, in the 202's shape; one entry."""
        first = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "row-1"})
        again = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "row-1"})
        assert first.status_code == 202
        assert again.status_code == 200
        assert again.headers["content-type"] == "application/json"
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.json().keys() == first.json().keys()
        assert again.headers["location"] == first.headers["location"]
        assert r.xlen(keys.stream) == 1

    def test_request_id_in_the_body_works_like_the_header(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Without the header, the body's request_id is the key; the record shows it."""
        body = {**MANLY, "request_id": "crm-4711"}
        first = client.post(AGENTS, json=body)
        again = client.post(AGENTS, json=body)
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.json()["job_id"] == first.json()["job_id"]
        assert r.xlen(keys.stream) == 1
        record = client.get(first.json()["status_url"]).json()
        assert record["idempotency_key"] == "crm-4711"
        assert record["request_id"] != "crm-4711"  # the HTTP request id, for log correlation

    def test_normalised_body_counts_as_the_same(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """JSON or form, 'nsw' or 'NSW', extra spaces: the same request."""
        first = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "k"})
        form = client.post(
            AGENTS,
            data={"suburb": " Manly ", "state": "nsw", "period_months": "12"},
            headers={"Idempotency-Key": "k"},
        )
        assert form.status_code == 200
        assert form.json()["job_id"] == first.json()["job_id"]
        assert r.xlen(keys.stream) == 1

    def test_replay_reports_the_current_status(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A repeat after the job finished says so (Make can stop polling at once)."""
        job_id = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "done"}).json()[
            "job_id"
        ]
        r.hset(keys.job(job_id), "status", "completed")
        again = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "done"}).json()
        assert again["status"] == "completed"
        assert again["position"] == 0
        assert again["estimated_wait_s"] == 0

    def test_replay_of_a_queued_job_reports_its_place(self, client: TestClient[Any]) -> None:
        """A repeat of a queued job counts only the entries ahead of it, not those behind."""
        client.post(AGENTS, json={"suburb": "Mosman", "state": "NSW"})
        first = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "mine"}).json()
        client.post(AGENTS, json={"suburb": "Bondi", "state": "NSW"})
        again = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "mine"}).json()
        assert first["position"] == again["position"] == 1


class TestConflicts:
    def test_same_key_different_body_is_409(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Another body under a used key is refused and explained; nothing is queued."""
        first = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "row-9"})
        other = client.post(
            AGENTS, json={"suburb": "Mosman", "state": "NSW"}, headers={"Idempotency-Key": "row-9"}
        )
        assert other.status_code == 409
        assert other.headers["content-type"] == "application/json"
        problem = other.json()
        assert problem["title"] == "Conflict"
        assert first.json()["job_id"] in problem["detail"]
        assert "different request" in problem["detail"]
        assert problem["errors"] == [
            {"field": "Idempotency-Key", "message": "'row-9' belongs to another request body"}
        ]
        assert r.xlen(keys.stream) == 1

    def test_conflict_names_request_id_when_it_was_the_key(self, client: TestClient[Any]) -> None:
        """The error points at the field the client used."""
        client.post(AGENTS, json={**MANLY, "request_id": "r1"})
        other = client.post(AGENTS, json={**MANLY, "period_months": 6, "request_id": "r1"})
        assert other.status_code == 409
        assert other.json()["errors"][0]["field"] == "request_id"

    @pytest.mark.parametrize("key", ["", "   ", "x" * 256, "tab\there"])
    def test_unusable_key_is_422(self, client: TestClient[Any], key: str) -> None:
        """An empty, overlong or non-printable key is refused, naming the header."""
        response = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": key})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"


class TestScope:
    def test_keys_are_per_report_kind(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The same key on the agents and the agency route makes two jobs."""
        a = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "same"})
        b = client.post(AGENCY, json=MANLY, headers={"Idempotency-Key": "same"})
        assert (a.status_code, b.status_code) == (202, 202)
        assert a.json()["job_id"] != b.json()["job_id"]
        assert r.xlen(keys.stream) == 2

    def test_keys_are_per_api_key(self, settings: Settings, r: redis.Redis, keys: Keys) -> None:
        """Two tenants using the same idempotency key never see each other's jobs."""
        app = create_app(replace(settings, api_keys=("tenant-a", "tenant-b")))
        with TestClient(app=app) as client:
            a = client.post(
                AGENTS, json=MANLY, headers={"X-API-Key": "tenant-a", "Idempotency-Key": "1"}
            )
            b = client.post(
                AGENTS,
                json={"suburb": "Mosman", "state": "NSW"},
                headers={"X-API-Key": "tenant-b", "Idempotency-Key": "1"},
            )
            assert (a.status_code, b.status_code) == (202, 202)
        assert a.json()["job_id"] != b.json()["job_id"]
        stored = idempotency_keys(r)
        assert len(stored) == 2
        assert not any("tenant" in key for key in stored), "API keys must not appear in key names"

    def test_keys_expire_after_the_ttl(
        self, settings: Settings, r: redis.Redis, keys: Keys
    ) -> None:
        """The key's record carries AGENTLINK_IDEMPOTENCY_TTL_S; once gone, the key is new."""
        with TestClient(app=create_app(replace(settings, idempotency_ttl_s=120))) as client:
            first = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "t"}).json()
            [stored] = idempotency_keys(r)
            assert 110 <= r.ttl(stored) <= 120
            assert r.hget(stored, "job_id") == first["job_id"]
            r.delete(stored)  # what expiry does, without waiting two minutes
            again = client.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "t"})
        assert again.status_code == 202
        assert again.json()["job_id"] != first["job_id"]


class TestConcurrency:
    def test_concurrent_identical_requests_queue_exactly_one_job(
        self, r: redis.Redis, settings: Settings, processes: Processes, keys: Keys
    ) -> None:
        """20 simultaneous identical requests to a real server: one 202, nineteen 200s, one
        entry, one job id."""
        base = processes.api(settings)
        with httpx.Client(base_url=base, timeout=10) as http:

            def post(_: int) -> httpx.Response:
                return http.post(AGENTS, json=MANLY, headers={"Idempotency-Key": "race"})

            with ThreadPoolExecutor(max_workers=20) as pool:
                answers = list(pool.map(post, range(20)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * 19 + [202], [a.text for a in answers]
        assert len({a.json()["job_id"] for a in answers}) == 1
        assert r.xlen(keys.stream) == 1
        assert len(idempotency_keys(r)) == 1
