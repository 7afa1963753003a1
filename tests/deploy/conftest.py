"""The compose file, parsed once for the deployment tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.compose import load_compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file."""
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    assert found, "docker-compose.yml defines no services"
    return found
