"""Sales data, figures, SVG charts and PDF rendering of the agents and agency reports.

The consumers need only ``make_report`` and a ``SalesSource`` (``open_source(settings.data)``,
or ``sample_source()``). ``make_report`` is imported on first use, so the data sources and
the figures can be used (by ``agentlink data check``, by tests) without loading WeasyPrint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentlink.reports.rendered import RenderedReport
from agentlink.reports.sources import (
    CsvSalesSource,
    HttpSalesSource,
    Sale,
    SalesSource,
    open_source,
    sample_source,
)

if TYPE_CHECKING:
    from agentlink.reports.render import make_report

__all__ = [
    "CsvSalesSource",
    "HttpSalesSource",
    "RenderedReport",
    "Sale",
    "SalesSource",
    "make_report",
    "open_source",
    "sample_source",
]


def __getattr__(name: str) -> Any:
    if name == "make_report":
        from agentlink.reports import render

        return getattr(render, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
