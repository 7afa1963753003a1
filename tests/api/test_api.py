"""The HTTP API: accepting requests onto the stream, validation errors, job status, PDFs."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import redis
from litestar.testing import TestClient
from structlog.testing import capture_logs

from agentlink.api import create_app
from agentlink.jobs import SCHEMA_VERSION
from agentlink.settings import Settings
from agentlink.stream.keys import Keys

AGENTS = "/api/generate-agents-report"
AGENCY = "/api/generate-agency-report"


class TestAccept:
    def test_agents_request_lands_in_stream_with_readable_fields(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A valid request answers 202 and XADDs flat, readable fields."""
        response = client.post(AGENTS, json={"suburb": "Manly", "state": "nsw"})
        assert response.status_code == 202
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["status"] == "queued"
        assert body["status_url"].endswith(f"/api/job-status/{body['job_id']}")
        assert response.headers["location"] == body["status_url"]
        [(entry_id, fields)] = r.xrange(keys.stream, "-", "+")
        assert fields["job_id"] == body["job_id"]
        assert fields["kind"] == "agents"
        assert fields["suburb"] == "Manly"
        assert fields["state"] == "NSW"
        assert fields["v"] == str(SCHEMA_VERSION)
        assert json.loads(fields["payload"]) == {
            "kind": "agents",
            "suburb": "Manly",
            "state": "NSW",
            "period_months": 12,
            "period_end": None,
            "callback_url": None,
        }
        assert r.hget(keys.index, entry_id) == body["job_id"]
        assert body["position"] == 0
        assert body["estimated_wait_s"] == 0

    def test_job_hash_written_with_entry(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The job hash is flat, says queued and names its stream entry."""
        body = client.post(
            AGENCY, json={"suburb": " Surry   Hills ", "state": "Nsw", "period_months": 6}
        ).json()
        job = r.hgetall(keys.job(body["job_id"]))
        [(entry_id, _)] = r.xrange(keys.stream, "-", "+")
        assert job["status"] == "queued"
        assert job["kind"] == "agency"
        assert job["suburb"] == "Surry Hills"
        assert job["period_months"] == "6"
        assert job["entry_id"] == entry_id

    def test_group_created_at_zero(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The API creates the group at id 0: entries added before any consumer are read."""
        client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"})
        [group] = r.xinfo_groups(keys.stream)
        assert group["name"] == "renderers"
        assert group["last-delivered-id"] == "0-0"
        assert group["lag"] == 1

    def test_form_body_accepted(self, client: TestClient[Any], r: redis.Redis, keys: Keys) -> None:
        """A form-encoded body is accepted too, numbers coerced."""
        response = client.post(
            AGENTS, data={"suburb": "Manly", "state": "NSW", "period_months": "24"}
        )
        assert response.status_code == 202
        assert response.headers["content-type"] == "application/json"
        [(_, fields)] = r.xrange(keys.stream, "-", "+")
        assert json.loads(fields["payload"])["period_months"] == 24

    def test_form_dates_coerced_and_bad_numbers_named(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Form fields go through the same model: a date is a date, a bad number names its field."""
        good = client.post(
            AGENCY, data={"suburb": "Manly", "state": "nsw", "period_end": "2026-10-31"}
        )
        assert good.status_code == 202
        [(_, fields)] = r.xrange(keys.stream, "-", "+")
        assert json.loads(fields["payload"])["period_end"] == "2026-10-31"
        bad = client.post(AGENCY, data={"suburb": "Manly", "state": "NSW", "period_months": "x"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/json"
        assert bad.json()["errors"][0]["field"] == "period_months"

    def test_position_counts_the_jobs_ahead(self, client: TestClient[Any]) -> None:
        """Each new job reports the entries queued before it."""
        positions = [
            client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}).json()["position"]
            for _ in range(3)
        ]
        assert positions == [0, 1, 2]


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "field", "fragment"),
        [
            ({"state": "NSW"}, "suburb", "missing required field"),
            ({"suburb": "Manly"}, "state", "missing required field"),
            ({"suburb": "", "state": "NSW"}, "suburb", "length >= 1"),
            ({"suburb": "x" * 81, "state": "NSW"}, "suburb", "length <= 80"),
            ({"suburb": 12, "state": "NSW"}, "suburb", "Expected str"),
            ({"suburb": "Manly", "state": "Queensland"}, "state", "must be one of NSW, VIC"),
            ({"suburb": "Manly; DROP", "state": "NSW"}, "suburb", "must be a suburb name"),
            ({"suburb": "Manly", "state": "NSW", "colour": "red"}, "colour", "unknown field"),
            ({"suburb": "Manly", "state": "NSW", "period_months": 0}, "period_months", ">= 1"),
            ({"suburb": "Manly", "state": "NSW", "period_end": "2026-13-01"}, "period_end", "date"),
        ],
    )
    def test_field_errors_name_the_field(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        body: dict[str, Any],
        field: str,
        fragment: str,
    ) -> None:
        """Every validation error is a 422 JSON body naming the field and the problem."""
        response = client.post(AGENTS, json=body)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/json"
        problem = response.json()
        assert problem["status"] == 422
        assert problem["title"] == "Invalid request"
        [error] = problem["errors"]
        assert error["field"] == field
        assert fragment in error["message"]
        assert r.xlen(keys.stream) == 0

    @pytest.mark.parametrize("content", [b"{bad json", b"", b"   "])
    def test_malformed_body_is_400(self, client: TestClient[Any], content: bytes) -> None:
        """Malformed or empty JSON is a 400 with a message, never a 500."""
        response = client.post(
            AGENTS, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["detail"]

    def test_array_body_is_422(self, client: TestClient[Any]) -> None:
        """A JSON array instead of an object is named as such."""
        response = client.post(AGENTS, content=b"[]", headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert "object" in response.json()["errors"][0]["message"]

    def test_unsupported_content_type_is_415(self, client: TestClient[Any]) -> None:
        """XML is refused with 415 and a hint."""
        response = client.post(AGENTS, content=b"<x/>", headers={"content-type": "application/xml"})
        assert response.status_code == 415
        assert "application/json" in response.json()["detail"]

    @pytest.mark.parametrize(
        "content_type",
        [
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "Application/JSON; charset=iso-8859-1",
        ],
    )
    def test_json_with_charset_accepted(self, client: TestClient[Any], content_type: str) -> None:
        """JSON is JSON whatever the charset parameter (Make sends one)."""
        response = client.post(
            AGENTS,
            content=b'{"suburb":"Manly","state":"NSW"}',
            headers={"content-type": content_type},
        )
        assert response.status_code == 202, response.text

    def test_oversize_body_is_413_json(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A body over AGENTLINK_MAX_BODY_BYTES (64 KiB) is refused with 413, nothing queued."""
        body = b'{"suburb":"Manly","state":"NSW","x":"' + b"a" * 70_000 + b'"}'
        response = client.post(AGENTS, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/json"
        assert response.json()["detail"] == "the request body is larger than 65536 bytes"
        assert r.xlen(keys.stream) == 0

    def test_body_limit_is_configurable(self, settings: Settings) -> None:
        """The limit follows the setting; a body just under it is read."""
        small = replace(settings, max_body_bytes=1024)
        with TestClient(app=create_app(small)) as client:
            under = {"suburb": "Manly", "state": "NSW", "request_id": "r" * 200}
            assert client.post(AGENTS, json=under).status_code == 202
            over = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW", "x": "y" * 1100})
            assert over.status_code == 413


class TestJobStatus:
    def test_status_of_queued_job(self, client: TestClient[Any]) -> None:
        """The status record of a fresh job."""
        job_id = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}).json()["job_id"]
        response = client.get(f"/api/job-status/{job_id}")
        assert response.status_code == 200
        record = response.json()
        assert record["job_id"] == job_id
        assert record["status"] == "queued"
        assert record["kind"] == "agents"
        assert record["suburb"] == "Manly"
        assert record["state"] == "NSW"
        assert record["attempts"] == 0
        assert record["result"] is None
        assert record["created_at"].endswith("+00:00")

    def test_unknown_job_is_404_json(self, client: TestClient[Any]) -> None:
        """An unknown job id is a 404 JSON body."""
        response = client.get("/api/job-status/no-such-job")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert "no-such-job" in response.json()["detail"]

    def test_pdf_of_unfinished_job_is_409(self, client: TestClient[Any]) -> None:
        """Asking for the PDF of a queued job says it is not ready."""
        job_id = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}).json()["job_id"]
        response = client.get(f"/api/jobs/{job_id}/pdf")
        assert response.status_code == 409
        assert "queued" in response.json()["detail"]

    def test_pdf_of_unknown_job_is_404(self, client: TestClient[Any]) -> None:
        """No job, no PDF."""
        assert client.get("/api/jobs/nope/pdf").status_code == 404

    def test_unknown_route_is_404_json(self, client: TestClient[Any]) -> None:
        """Unknown paths answer in the same JSON shape."""
        response = client.get("/api/nothing-here")
        assert response.status_code == 404
        assert response.json()["status"] == 404


class TestHealth:
    def test_health_ok(self, client: TestClient[Any]) -> None:
        """Health says ok while Redis answers."""
        response = client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "redis": "ok"}

    def test_redis_down_is_503_not_500(self, settings: Settings) -> None:
        """With Redis unreachable, requests get a 503 JSON body and health says so."""
        down = replace(settings, redis_url="redis://127.0.0.1:1/0")
        with TestClient(app=create_app(down)) as client:
            response = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"})
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert "Redis" in response.json()["detail"]
            assert client.get("/health").status_code == 503


class TestApiKeys:
    @pytest.fixture
    def keyed(self, settings: Settings) -> Any:
        with TestClient(app=create_app(replace(settings, api_keys=("k-one", "k-two")))) as c:
            yield c

    def test_missing_key_is_401_json(
        self, keyed: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Without a key, /api/* answers 401 JSON and nothing is queued."""
        response = keyed.post(AGENTS, json={"suburb": "Manly", "state": "NSW"})
        assert response.status_code == 401
        assert response.json()["title"] == "Unauthorized"
        assert "X-API-Key" in response.json()["detail"]
        assert r.xlen(keys.stream) == 0

    def test_wrong_key_is_401(self, keyed: TestClient[Any]) -> None:
        """A key that is not configured is refused."""
        response = keyed.get("/api/job-status/x", headers={"Authorization": "Bearer k-three"})
        assert response.status_code == 401

    @pytest.mark.parametrize(
        "headers",
        [
            {"Authorization": "Bearer k-two"},
            {"X-API-Key": "k-one"},
            {"authorization": "bearer k-one"},
        ],
    )
    def test_either_header_works(self, keyed: TestClient[Any], headers: dict[str, str]) -> None:
        """Bearer or X-API-Key, any configured key."""
        response = keyed.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}, headers=headers)
        assert response.status_code == 202

    def test_health_needs_no_key(self, keyed: TestClient[Any]) -> None:
        """Health checks work without a key."""
        assert keyed.get("/health").status_code == 200

    @pytest.mark.parametrize(
        "path", ["/api/job-status/x", "/api/jobs/x/pdf", "/api/generate-agency-report"]
    )
    def test_every_api_route_needs_a_key(self, keyed: TestClient[Any], path: str) -> None:
        """Status, PDF and both submit routes are guarded alike."""
        if path.startswith("/api/generate"):
            response = keyed.post(path, json={"suburb": "Manly", "state": "NSW"})
        else:
            response = keyed.get(path, headers={"X-API-Key": "k-one-and-more"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "headers",
        [
            {"Authorization": "Basic k-one"},
            {"Authorization": "Bearer "},
            {"X-API-Key": ""},
            {"X-API-Key": "k-on"},
            {"Authorization": "k-one"},
        ],
    )
    def test_malformed_credentials_are_401(
        self, keyed: TestClient[Any], headers: dict[str, str]
    ) -> None:
        """Another scheme, an empty key or a prefix of a key is no key."""
        response = keyed.get("/api/job-status/x", headers=headers)
        assert response.status_code == 401

    def test_keys_never_reach_the_logs(self, keyed: TestClient[Any]) -> None:
        """Accepted, refused and rate-limited requests log nothing of the key."""
        with capture_logs() as logs:
            keyed.post(
                AGENTS, json={"suburb": "Manly", "state": "NSW"}, headers={"X-API-Key": "k-one"}
            )
            keyed.get("/api/job-status/x", headers={"Authorization": "Bearer k-wrong"})
        assert logs, "nothing was logged"
        assert "k-one" not in repr(logs)
        assert "k-wrong" not in repr(logs)
