"""The API's /metrics: requests counted by route template and status, no consumer metrics
in the API's exposition, and the request id every response and log line carries.

Expositions are parsed with prometheus_client's own parser and checked value by value.
"""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from litestar.testing import TestClient

from tests.conftest import submit
from tests.support.metrics import MIB, names, scrape, value

AGENTS = "/api/generate-agents-report"


# -- reading an exposition ----------------------------------------------------------------------


def route_of(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], part: str) -> str:
    """The route template label that contains ``part``."""
    routes = {
        labels["route"]
        for name, frozen in samples
        if name == "agentlink_http_requests_total"
        for labels in [dict(frozen)]
        if part in labels["route"]
    }
    assert len(routes) == 1, routes
    return routes.pop()


# -- the API's own counters -------------------------------------------------------------------


class TestRequestMetrics:
    def test_requests_counted_by_route_template_and_status(self, client: TestClient[Any]) -> None:
        """Accepted, invalid and unknown-job requests each count once under their route."""
        submit(client)  # a first request, so every series below exists before we measure
        client.get("/api/job-status/warm-up")
        before = scrape(client)
        assert client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}).status_code == 202
        assert client.post(AGENTS, json={"suburb": "Manly", "state": "XX"}).status_code == 422
        assert client.get("/api/job-status/no-such-job").status_code == 404
        after = scrape(client)
        status_route = route_of(after, "job-status")
        assert "{" in status_route, "the raw job id must not become a label"

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - (
                value(before, name, **labels)
                if (name, frozenset(labels.items())) in before
                else 0.0
            )

        total = "agentlink_http_requests_total"
        assert delta(total, route=AGENTS, method="POST", status="202") == 1
        assert delta(total, route=AGENTS, method="POST", status="422") == 1
        assert delta(total, route=status_route, method="GET", status="404") == 1
        assert delta("agentlink_requests_accepted_total", kind="agents") == 1
        assert delta("agentlink_requests_rejected_total", reason="invalid") == 1
        duration = "agentlink_http_request_duration_seconds_count"
        assert delta(duration, route=AGENTS, method="POST") == 2
        assert not any(name.endswith("_created") for name in names(after))

    def test_api_exposes_no_consumer_metrics(self, client: TestClient[Any]) -> None:
        """The API's exposition has its own process metrics, and no idle consumer counters."""
        samples = scrape(client)
        assert value(samples, "process_resident_memory_bytes") > 10 * MIB
        assert not {n for n in names(samples) if n.startswith("agentlink_jobs_total")}
        assert "agentlink_reclaimed_total" not in names(samples)


class TestRequestId:
    def test_callers_request_id_is_echoed(self, client: TestClient[Any]) -> None:
        """A sane X-Request-ID comes back unchanged."""
        response = client.get("/health", headers={"X-Request-ID": "make-run-42.7"})
        assert response.headers["x-request-id"] == "make-run-42.7"

    @pytest.mark.parametrize("given", [None, "has spaces", "x" * 200, "<script>"])
    def test_missing_or_unsafe_request_id_is_replaced(
        self, client: TestClient[Any], given: str | None
    ) -> None:
        """Without a usable X-Request-ID the API makes one: 32 hex digits."""
        headers = {"X-Request-ID": given} if given else {}
        response = client.get("/health", headers=headers)
        request_id = response.headers["x-request-id"]
        assert request_id != given
        assert len(request_id) == 32
        int(request_id, 16)

    def test_every_log_line_of_a_request_carries_its_id(self, client: TestClient[Any]) -> None:
        """report.accepted (and anything else logged during the request) has request_id."""
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            response = client.post(
                AGENTS, json={"suburb": "Manly", "state": "NSW"}, headers={"X-Request-ID": "r-77"}
            )
        assert response.status_code == 202
        accepted = [line for line in logs if line["event"] == "report.accepted"]
        assert len(accepted) == 1
        assert accepted[0]["request_id"] == "r-77"
        assert accepted[0]["job_id"] == response.json()["job_id"]
        assert all(line.get("request_id") == "r-77" for line in logs)
