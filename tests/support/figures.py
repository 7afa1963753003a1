"""The cases the figure tests render: sample suburbs, and a CSV written with traps (sales one
day either side of the period, an agent who moved agency, ties, a median between two
sales, a price written $1,250,000), each rendered to a PDF and read back as text."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import pypdf

from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.reports import make_report
from agentlink.reports.sales import SalesSource
from tests.support import recount as rc

SHIPPED = resources.files("agentlink.reports") / "data" / "sample_sales.csv"
JOB_ID = "job-7f3a9c21"
GENERATED_AT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
EN = "\u2013"


@dataclass(frozen=True)
class Case:
    kind: Kind
    suburb: str
    state: str
    highlight: str | None = None


@dataclass(frozen=True)
class Rendered:
    case: Case
    text: str  # the PDF's text, whitespace collapsed
    lines: list[str]  # the PDF's text, line by line
    rows: list[rc.Row]  # the suburb's raw rows
    pages: int


def render(case: Case, source: SalesSource, rows: list[rc.Row]) -> Rendered:
    spec = ReportSpec(
        kind=case.kind,
        suburb=case.suburb,
        state=AuState(case.state),
        **({"highlight": case.highlight} if case.highlight else {}),
    )
    report = make_report(spec, job_id=JOB_ID, source=source, generated_at=GENERATED_AT)
    reader = pypdf.PdfReader(io.BytesIO(report.pdf))
    raw = "\n".join(page.extract_text() for page in reader.pages)
    mine = [
        r for r in rows if r.suburb.casefold() == case.suburb.casefold() and r.state == case.state
    ]
    return Rendered(case, " ".join(raw.split()), raw.splitlines(), mine, report.pages)


SAMPLE_CASES = [
    Case(Kind.AGENTS, "Manly", "NSW", highlight="marco chen"),
    Case(Kind.AGENCY, "Manly", "NSW", highlight="COASTLINE property"),
    Case(Kind.AGENTS, "Fremantle", "WA"),
    Case(Kind.AGENCY, "Fremantle", "WA"),
    Case(Kind.AGENCY, "Whyalla", "SA"),
    Case(Kind.AGENTS, "Coral Bay", "WA"),
]

# The traps. The latest sale is in October 2026, so the period is November 2025 -
# October 2026 and the previous one November 2024 - October 2025.
TRAP_CSV = """\
Sale Date,Street,suburb,state,postcode,Sale Price,property_type,Beds,days_on_market,agent,agency,N
2026-10-31,1 Edge Street,Testville,NSW,2999,"$1,250,000",house,3,10,Sam Lee,Beta Property,last
2025-11-01,2 Edge Street,Testville,NSW,2999,900000,unit,2,20,Sam Lee,Alpha Realty,first
2025-10-31,3 Edge Street,Testville,NSW,2999,5000000,house,5,30,Sam Lee,Alpha Realty,before
2024-10-31,4 Edge Street,Testville,NSW,2999,7000000,house,5,40,Ann Ho,Alpha Realty,older
2026-11-01,5 Edge Street,Elsewhere,NSW,2999,8000000,house,4,50,Ann Ho,Alpha Realty,other
2026-02-14,6 Edge Street,Testville,NSW,2999,1000000,unit,2,15,Sam Lee,Alpha Realty,moves
2026-06-30,7 Edge Street,Testville,NSW,2999,1475001,townhouse,3,25,Sam Lee,Beta Property,
2026-03-03,8 Edge Street,Testville,NSW,2999,1200000,house,3,9,Cy Zed,Gamma Homes,tie
2026-03-04,9 Edge Street,Testville,NSW,2999,800000,unit,1,11,Cy Zed,Gamma Homes,
2026-03-05,10 Edge Street,Testville,NSW,2999,1200000,house,3,13,Bo Yu,Gamma Homes,
2026-03-06,11 Edge Street,Testville,NSW,2999,800000,unit,1,17,Bo Yu,Gamma Homes,
2026-04-01,12 Edge Street,Testville,NSW,2999,650000,land,0,60,Di Oh,Delta Estates,
2026-04-02,13 Edge Street,Testville,NSW,2999,3000000,house,4,7,Di Oh,Delta Estates,
2025-12-24,14 Edge Street,Testville,NSW,2999,2000000,house,4,19,Al Ax,Alpha Realty,
2025-06-15,15 Edge Street,Testville,NSW,2999,1100000,unit,2,22,Bo Yu,Gamma Homes,prior
2025-07-15,16 Edge Street,Testville,NSW,2999,1300000,unit,2,28,Di Oh,Delta Estates,prior
"""
COLUMNS = (
    ("sold_date", "Sale Date"),
    ("address", "Street"),
    ("price", "Sale Price"),
    ("bedrooms", "Beds"),
)
TRAP_CASES = [
    Case(Kind.AGENTS, "Testville", "NSW", highlight="sam lee"),
    Case(Kind.AGENCY, "Testville", "NSW", highlight="Gamma Homes"),
]


def now_and_before(r: Rendered) -> tuple[rc.Window, list[rc.Row], list[rc.Row]]:
    w = rc.window(r.rows)
    return (
        w,
        [x for x in r.rows if w.holds(x.sold)],
        [x for x in r.rows if w.previous.holds(x.sold)],
    )
