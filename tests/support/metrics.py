"""Reading Prometheus expositions in tests."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

MIB = 1024 * 1024


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """One sample's value; KeyError naming it if the exposition lacks it."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise KeyError(f"{name}{labels} not in the exposition")
    return samples[key]


def names(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    """The sample names present."""
    return {name for name, _ in samples}


def scrape(client: TestClient[Any]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics and parse it."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)
