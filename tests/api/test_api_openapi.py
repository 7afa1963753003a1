"""The OpenAPI schema documents every route, body, answer and error, and the answers the API
really gives conform to it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import jsonschema
import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.settings import Settings
from agentlink.stream.keys import Keys

AGENTS = "/api/generate-agents-report"
AGENCY = "/api/generate-agency-report"
SUBMIT_ERRORS = {"400", "401", "408", "409", "413", "415", "422", "429", "503"}


@pytest.fixture
def schema(client: TestClient[Any]) -> dict[str, Any]:
    """The served OpenAPI document."""
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def conforms(schema: dict[str, Any], response: httpx.Response, path: str, method: str) -> None:
    """The response's status, content type and body are what the schema documents."""
    operation = schema["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered undocumented {status}"
    documented = operation["responses"][status]
    if not response.content:
        return
    media = response.headers["content-type"].split(";")[0]
    assert media in documented["content"], f"{status} as {media} is not documented"
    body_schema = documented["content"][media]["schema"]
    if media == "application/json":
        # The whole document is the root, so #/components/... references resolve.
        jsonschema.Draft202012Validator({**schema, **body_schema}).validate(response.json())
    for header in documented.get("headers", {}):
        assert header.lower() in response.headers, f"{status} lacks its {header} header"


class TestDocument:
    def test_every_route_is_documented(self, schema: dict[str, Any]) -> None:
        """Both submit routes, status, PDF, cancel and health, each with a summary and a
        description (the dashboard's pages are no part of the API)."""
        operations = {
            (path, method): op
            for path, item in schema["paths"].items()
            for method, op in item.items()
            if method in {"get", "post", "put", "patch", "delete"}
        }
        assert set(operations) == {
            (AGENTS, "post"),
            (AGENCY, "post"),
            ("/api/job-status/{job_id}", "get"),
            ("/api/jobs/{job_id}/pdf", "get"),
            ("/api/jobs/{job_id}/cancel", "post"),
            ("/health", "get"),
        }
        for key, operation in operations.items():
            assert operation["summary"], key
            assert operation["description"], key

    @pytest.mark.parametrize("path", [AGENTS, AGENCY])
    def test_request_body_as_json_and_form_with_examples(
        self, schema: dict[str, Any], path: str
    ) -> None:
        """The body schema (ReportRequest) in both encodings, with examples."""
        body = schema["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded"}
        for media in body["content"].values():
            assert media["schema"] == {"$ref": "#/components/schemas/ReportRequest"}
            assert media["examples"]
        fields = schema["components"]["schemas"]["ReportRequest"]["properties"]
        assert set(fields) == {
            "suburb",
            "state",
            "period_months",
            "period_end",
            "callback_url",
            "request_id",
            "highlight",
        }
        make = body["content"]["application/json"]["examples"]["make"]["value"]
        assert make["callback_url"].startswith("https://hook.")

    def test_every_error_is_documented_with_an_example(self, schema: dict[str, Any]) -> None:
        """Each submit error answers in the Problem shape, with an example; 429 and 503 carry
        Retry-After; the 202 and the idempotent 200 share one shape."""
        responses = schema["paths"][AGENTS]["post"]["responses"]
        assert set(responses) >= SUBMIT_ERRORS
        for code in SUBMIT_ERRORS:
            media = responses[code]["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}, code
            assert media["examples"], code
        for code in ("429", "503"):
            assert "Retry-After" in responses[code]["headers"]
        accepted = responses["202"]["content"]["application/json"]["schema"]
        assert responses["200"]["content"]["application/json"]["schema"] == accepted
        assert "Location" in responses["202"]["headers"]
        problem = schema["components"]["schemas"]["Problem"]
        assert set(problem["required"]) == {"status", "title", "detail"}

    def test_auth_idempotency_and_callbacks_are_described(self, schema: dict[str, Any]) -> None:
        """Security schemes, the Idempotency-Key header, and the callback sent when done."""
        schemes = schema["components"]["securitySchemes"]
        assert schemes["BearerAuth"]["scheme"] == "bearer"
        assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"
        operation = schema["paths"][AGENTS]["post"]
        assert {"BearerAuth": []} in operation["security"]
        assert "security" not in schema["paths"]["/health"]["get"]
        [header] = [p for p in operation["parameters"] if p["in"] == "header"]
        assert header["name"] == "Idempotency-Key"
        [callback] = operation["callbacks"]["jobFinished"].values()
        webhook = schema["webhooks"]["jobFinished"]
        for item in (callback, webhook):
            post = item["post"]
            assert post["requestBody"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/JobRecord"
            }
            names = {p["name"] for p in post["parameters"]}
            assert {"X-AgentLink-Signature", "X-AgentLink-Timestamp"} <= names

    def test_status_record_has_an_example(self, schema: dict[str, Any]) -> None:
        """The status route shows a completed record."""
        ok = schema["paths"]["/api/job-status/{job_id}"]["get"]["responses"]["200"]
        example = ok["content"]["application/json"]["examples"]["completed"]["value"]
        jsonschema.Draft202012Validator(
            {**schema, "$ref": "#/components/schemas/JobRecord"}
        ).validate(example)


class TestConformance:
    def test_submit_answers_conform(
        self, settings: Settings, r: redis.Redis, keys: Keys, schema: dict[str, Any]
    ) -> None:
        """202, 200, 400, 401, 409, 413, 415, 422 and 429 answers match their documentation."""
        # Answers before the enqueue script (400, 401, 413, 415, 422) spend no budget.
        keyed = replace(settings, api_keys=("k",), rate_limit=5)
        auth = {"X-API-Key": "k"}
        manly = {"suburb": "Manly", "state": "NSW"}
        with TestClient(app=create_app(keyed)) as client:
            answers = [
                client.post(AGENTS, json=manly, headers={**auth, "Idempotency-Key": "i"}),
                client.post(AGENTS, json=manly, headers={**auth, "Idempotency-Key": "i"}),
                client.post(
                    AGENTS,
                    json={**manly, "period_months": 2},
                    headers={**auth, "Idempotency-Key": "i"},
                ),
                client.post(
                    AGENTS, content=b"{", headers={**auth, "content-type": "application/json"}
                ),
                client.post(AGENTS, json=manly),
                client.post(
                    AGENTS,
                    content=b"x" * 70_000,
                    headers={**auth, "content-type": "application/json"},
                ),
                client.post(AGENTS, content=b"<a/>", headers={**auth, "content-type": "text/xml"}),
                client.post(AGENTS, json={"suburb": "Manly"}, headers=auth),
                *[client.post(AGENCY, json=manly, headers=auth) for _ in range(6)],
            ]
        statuses = [a.status_code for a in answers]
        assert statuses[:8] == [202, 200, 409, 400, 401, 413, 415, 422]
        assert 429 in statuses[8:]
        for answer in answers:
            path = answer.request.url.path
            conforms(schema, answer, path, "post")

    def test_read_answers_conform(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, schema: dict[str, Any]
    ) -> None:
        """Status 200/404, PDF 404/409 and health 200 match their documentation."""
        job_id = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}).json()["job_id"]
        for path, template in (
            (f"/api/job-status/{job_id}", "/api/job-status/{job_id}"),
            ("/api/job-status/nope", "/api/job-status/{job_id}"),
            (f"/api/jobs/{job_id}/pdf", "/api/jobs/{job_id}/pdf"),
            ("/api/jobs/nope/pdf", "/api/jobs/{job_id}/pdf"),
            ("/health", "/health"),
        ):
            conforms(schema, client.get(path), template, "get")

    def test_cancel_answers_conform(self, client: TestClient[Any], schema: dict[str, Any]) -> None:
        """Cancel 200 (the record), 409 (finished) and 404 match their documentation."""
        job_id = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}).json()["job_id"]
        template = "/api/jobs/{job_id}/cancel"
        answers = [client.post(f"/api/jobs/{job}/cancel") for job in (job_id, job_id, "nope")]
        assert [answer.status_code for answer in answers] == [200, 409, 404]
        for answer in answers:
            conforms(schema, answer, template, "post")

    def test_unavailable_answers_conform(self, settings: Settings) -> None:
        """With Redis down, submit, status and health answer 503 as documented."""
        down = replace(settings, redis_url="redis://127.0.0.1:1/0")
        with TestClient(app=create_app(down)) as client:
            document = client.get("/schema/openapi.json").json()
            submit = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"})
            status = client.get("/api/job-status/x")
            health = client.get("/health")
        assert (submit.status_code, status.status_code, health.status_code) == (503, 503, 503)
        conforms(document, submit, AGENTS, "post")
        conforms(document, status, "/api/job-status/{job_id}", "get")
        conforms(document, health, "/health", "get")
