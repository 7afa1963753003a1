"""Sales data, analytics, SVG charts and PDF rendering of the agents and agency reports.

The consumers need only ``make_report`` and a ``SalesSource`` (``sample_source()`` by
default); the submodules are public for tests and for other front ends.
"""

from __future__ import annotations

from agentlink.reports.render import RenderedReport, make_report
from agentlink.reports.sources import CsvSalesSource, Sale, SalesSource, sample_source

__all__ = [
    "CsvSalesSource",
    "RenderedReport",
    "Sale",
    "SalesSource",
    "make_report",
    "sample_source",
]
