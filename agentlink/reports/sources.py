"""Which ``SalesSource`` a process uses: the one ``AGENTLINK_DATA`` names.

``open_source`` turns the ``DataSettings`` into a source, shared per process so that a
render child parses a CSV once and keeps one HTTP connection pool. The default, the
bundled sample data set, needs no setting at all, so everything runs offline.
"""

from __future__ import annotations

import functools
from importlib import resources

from agentlink.report_settings import DataSettings
from agentlink.reports.csv_source import CsvSalesSource, shared_csv_source
from agentlink.reports.http_source import HttpSalesSource
from agentlink.reports.sales import (
    COLUMNS,
    DescribedSource,
    PropertyType,
    Sale,
    SalesSource,
    SuburbDirectory,
)

__all__ = [
    "COLUMNS",
    "CsvSalesSource",
    "DescribedSource",
    "HttpSalesSource",
    "PropertyType",
    "Sale",
    "SalesSource",
    "SuburbDirectory",
    "describe",
    "open_source",
    "sample_source",
    "shared_csv_source",
]

SAMPLE_LABEL = "the AgentLink sample data set (fictional agents and agencies)"


def sample_source(label: str = "") -> CsvSalesSource:
    """The bundled sample data set (fictional agents, real suburbs), shared per process."""
    data = resources.files("agentlink.reports") / "data" / "sample_sales.csv"
    return shared_csv_source(str(data), (), label or SAMPLE_LABEL)


def open_source(data: DataSettings) -> SalesSource:
    """The process-wide source of ``data`` (nothing is read until the first query)."""
    if data.kind == "csv":
        return shared_csv_source(data.location, data.columns, data.label)
    if data.kind == "http":
        return _shared_http_source(data)
    return sample_source(data.label)


def describe(source: SalesSource) -> str:
    """How a report names the source of its figures."""
    return source.description if isinstance(source, DescribedSource) else "recorded sales"


@functools.cache
def _shared_http_source(data: DataSettings) -> HttpSalesSource:
    return HttpSalesSource(
        data.location, auth_header=data.auth_header, timeout_s=data.timeout_s, label=data.label
    )
