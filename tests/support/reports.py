"""Making a report in a test: the sample data or a few sales written by hand, rendered at a
fixed time, and read back as text."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, date, datetime

import pypdf

from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.report_settings import BrandSettings
from agentlink.reports import RenderedReport, Sale, make_report, sample_source
from agentlink.reports.sales import PropertyType

JOB_ID = "01JTESTJOB0000000000000000"
GENERATED_AT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def render(
    kind: Kind = Kind.AGENTS,
    suburb: str = "Manly",
    state: AuState = AuState.NSW,
    *,
    brand: BrandSettings | None = None,
    **fields: object,
) -> RenderedReport:
    spec = ReportSpec(kind=kind, suburb=suburb, state=state, **fields)  # type: ignore[arg-type]
    return make_report(
        spec, job_id=JOB_ID, source=sample_source(), generated_at=GENERATED_AT, brand=brand
    )


def read(report: RenderedReport) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(report.pdf))
    return reader, " ".join("\n".join(p.extract_text() for p in reader.pages).split())


def sale(sold: date = date(2026, 6, 15), *, price: int = 1_000_000, agent: str = "Ann Lee",
         agency: str = "Bluegum Property", days_on_market: int = 20) -> Sale:  # fmt: skip
    return Sale(
        sold,
        "1 High Street",
        "Testville",
        AuState.NSW,
        "2000",
        price,
        PropertyType.HOUSE,
        3,
        days_on_market,
        agent,
        agency,
    )


class ListSource:
    """A SalesSource over a list, for figures small enough to check by hand."""

    def __init__(self, sales: Sequence[Sale]) -> None:
        self._sales = sales

    def sales(
        self, suburb: str, state: AuState, start: date | None = None, end: date | None = None
    ) -> Sequence[Sale]:
        return [
            s for s in self._sales
            if s.suburb.casefold() == suburb.casefold() and s.state == state
            and (start is None or s.sold_date >= start) and (end is None or s.sold_date <= end)
        ]  # fmt: skip
