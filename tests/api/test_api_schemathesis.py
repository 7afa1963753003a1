"""Schemathesis against the live API: generated requests from the served OpenAPI schema get
no 5xx (but the documented 503s), and every answer conforms to the schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from agentlink.settings import Settings
from tests.conftest import Processes

API_KEY = "schemathesis-key"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def live_api(settings: Settings, processes: Processes) -> str:
    """`agentlink api` on a free port, with a key and a rate limit the run stays under."""
    return processes.api(
        settings,
        AGENTLINK_API_KEYS=API_KEY,
        AGENTLINK_RATE_LIMIT="100000",
        AGENTLINK_CALLBACK_HOSTS="hooks.agentlink.test",
    )


def test_generated_requests_conform(live_api: str) -> None:
    """Every operation, 25 generated requests each (bounded, derandomised): no undocumented
    status, content type, header or body."""
    schema = schemathesis.openapi.from_url(f"{live_api}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=CHECKS, timeout=10)

        run()
