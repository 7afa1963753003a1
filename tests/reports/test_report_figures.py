"""Every figure of both reports, recounted from the raw CSV rows and found in the PDF.

The recount (tests/support/recount.py) uses only the csv, statistics and decimal modules and the
definitions printed in the report's methodology; the PDF is read back with pypdf. Several
sample suburbs (a large market, a mid-sized one, a thin one) and a CSV written here with
traps: sales one day either side of the period, an agent who moved agency, ties in
sales and in sales value, a median between two sales (cents), a price written $1,250,000.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pypdf
import pytest

from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.reports import CsvSalesSource, make_report, sample_source
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


@pytest.fixture(scope="module")
def sample_rows() -> list[rc.Row]:
    return rc.read_rows(str(SHIPPED))


@pytest.fixture(scope="module")
def trap_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[rc.Row]]:
    folder = tmp_path_factory.mktemp("traps")
    path = folder / "export.csv"
    path.write_text(TRAP_CSV)
    plain = folder / "plain.csv"  # the same rows under the documented headers, for the recount
    _, *body = TRAP_CSV.splitlines()
    plain.write_text(
        "sold_date,address,suburb,state,postcode,price,property_type,bedrooms,days_on_market,"
        "agent,agency,n\n" + "\n".join(body) + "\n"
    )
    return path, rc.read_rows(plain)


@pytest.fixture(
    scope="module", params=SAMPLE_CASES + TRAP_CASES, ids=lambda c: f"{c.kind.value}-{c.suburb}"
)
def rendered(
    request: pytest.FixtureRequest,
    sample_rows: list[rc.Row],
    trap_rows: tuple[Path, list[rc.Row]],
) -> Rendered:
    case: Case = request.param
    if case.suburb == "Testville":
        path, rows = trap_rows
        return render(case, CsvSalesSource(path, columns=COLUMNS), rows)
    return render(case, sample_source(), sample_rows)


def now_and_before(r: Rendered) -> tuple[rc.Window, list[rc.Row], list[rc.Row]]:
    w = rc.window(r.rows)
    return (
        w,
        [x for x in r.rows if w.holds(x.sold)],
        [x for x in r.rows if w.previous.holds(x.sold)],
    )


class TestPeriodAndHeadlines:
    """The period, the cover and the overview's headline figures."""

    def test_period_is_whole_calendar_months(self, rendered: Rendered) -> None:
        """The cover names the months, the methodology the first and last day."""
        w, _, _ = now_and_before(rendered)
        first = f"{1} {rc.month_name(w.first)}"
        assert f"{w.label} · 12 months" in rendered.text
        assert f"from {first} to " in rendered.text
        assert (
            f"The previous period is the 12 months before it, {w.previous.label}" in rendered.text
        )

    def test_cover_figures(self, rendered: Rendered) -> None:
        """Properties sold, median price and the number of ranked agents or agencies."""
        _, now, _ = now_and_before(rendered)
        g = rc.Group.of(now)
        ranked = (
            {(x.agent, x.agency) for x in now}
            if rendered.case.kind is Kind.AGENTS
            else {x.agency for x in now}
        )
        who = ("agent", "agents") if rendered.case.kind is Kind.AGENTS else ("agency", "agencies")
        sold = "property" if g.n == 1 else "properties"
        assert (
            f"{g.n} {sold} sold {rc.money(g.median)} median price {len(ranked)} " in rendered.text
        )
        assert f"{len(ranked)} {who[0] if len(ranked) == 1 else who[1]} with sales" in rendered.text

    def test_kpis_with_changes(self, rendered: Rendered) -> None:
        """Each KPI with its change against the previous period, or why there is none."""
        _, now, before = now_and_before(rendered)
        g = rc.Group.of(now)
        t = rendered.text
        if not before:
            assert f"PROPERTIES SOLD {g.n} no previous sales" in t
            assert f"MEDIAN DAYS ON MARKET {rc.days(g.dom)} no previous sales" in t
            return
        p = rc.Group.of(before)
        assert f"PROPERTIES SOLD {g.n} {rc.change(g.n, p.n)} vs {p.n}" in t
        assert (
            f"MEDIAN PRICE {rc.money(g.median)} {rc.change(g.median, p.median)} "
            f"vs {rc.money(p.median)}" in t
        )
        assert (
            f"SALES VALUE {rc.money(g.value)} {rc.change(g.value, p.value)} vs {rc.money(p.value)}"
            in t
        )
        dom = (
            "no change"
            if g.dom == p.dom
            else rc.signed(g.dom - p.dom, " day" if abs(g.dom - p.dom) == 1 else " days")
        )
        assert f"MEDIAN DAYS ON MARKET {rc.days(g.dom)} {dom} vs {rc.days(p.dom)}" in t

    def test_lede(self, rendered: Rendered) -> None:
        """The overview's first sentence: properties sold and the combined sales value."""
        w, now, _ = now_and_before(rendered)
        g = rc.Group.of(now)
        sold = "1 property" if g.n == 1 else f"{g.n} properties"
        suburb = now[0].suburb
        assert (
            f"{sold} sold in {suburb} in {w.label} (12 months), "
            f"for a combined sales value of {rc.money(g.value)}." in rendered.text
        )


class TestMarketShape:
    """Price bands, property types and bedrooms."""

    def test_price_bands_hold_what_they_say(self, rendered: Rendered) -> None:
        """Each printed band's count and share recounted from its printed bounds."""
        _, now, _ = now_and_before(rendered)
        amount = r"\$[\d.]+[mk]"
        band = rf"(Under {amount}|{amount} – {amount}|{amount} and over) (\d+) ([\d.]+%)"
        found = re.findall(band, rendered.text)
        if len(now) < 5:
            assert not found
            assert "too few for a price distribution" in rendered.text
            return
        assert len(found) >= 3
        total = 0
        for label, count, share in found:
            if label.startswith("Under"):
                low, high = None, rc.amount(label.split()[1])
            elif label.endswith("and over"):
                low, high = rc.amount(label.split()[0]), None
            else:
                low, high = (rc.amount(part) for part in label.split(" – "))
            n = rc.in_band(now, low, high)
            assert (int(count), share) == (n, rc.share(n, len(now))), label
            total += n
        assert total == len(now)

    def test_property_types(self, rendered: Rendered) -> None:
        """Sold, share and median price per property type."""
        _, now, _ = now_and_before(rendered)
        for kind in ("house", "unit", "townhouse", "land"):
            mine = [x for x in now if x.kind == kind]
            if mine:
                g = rc.Group.of(mine)
                assert (
                    f"{kind.capitalize()} {g.n} {rc.share(g.n, len(now))} {rc.money(g.median)}"
                    in rendered.text
                )

    def test_bedrooms(self, rendered: Rendered) -> None:
        """Sold, median price and median days per bedroom count (5 or more together)."""
        _, now, _ = now_and_before(rendered)
        section = rendered.text.split(
            "Homes by bedrooms BEDROOMS SOLD MEDIAN PRICE MEDIAN DAYS ON MARKET"
        )[1]
        for beds in range(1, 6):
            mine = [x for x in now if x.beds == beds or (beds == 5 and x.beds > 5)]
            if mine:
                g = rc.Group.of(mine)
                label = "5 or more" if beds == 5 else str(beds)
                assert f"{label} {g.n} {rc.money(g.median)} {rc.days(g.dom)}" in section


class TestRanking:
    """The ranked table, the chart beside it, and the total row."""

    def ranked(self, r: Rendered) -> tuple[list[rc.Ranked], int, int]:
        _, now, before = now_and_before(r)
        key = rc.by_agent if r.case.kind is Kind.AGENTS else rc.by_agency
        return rc.rank(now, before, key), len(now), len(before)

    def test_every_row(self, rendered: Rendered) -> None:
        """Rank, name, (agency or agents), sold, change, share, median, value, days: in order."""
        rows, whole, before = self.ranked(rendered)
        for row in rows:
            numbers = rc.ranking_numbers(row, whole, before)
            if rendered.case.kind is Kind.AGENCY:
                expected = f" {row.rank} {row.name} {row.agents} {numbers} "
                assert expected in rendered.text, expected
            else:
                # A long agency name may wrap: its first words come before the figures.
                pattern = rf" {row.rank} {re.escape(row.name)} (.{{1,60}}?) {re.escape(numbers)} "
                match = re.search(pattern, rendered.text)
                assert match, pattern
                assert row.agency
                assert row.agency.startswith(match.group(1))

    def test_order_is_the_documented_one(self, rendered: Rendered) -> None:
        """Rows appear in the recounted rank order (ties by value, then name)."""
        rows, _, _ = self.ranked(rendered)
        positions = [rendered.text.find(f" {row.rank} {row.name} ") for row in rows]
        assert all(p >= 0 for p in positions)
        assert positions == sorted(positions)

    def test_total_row(self, rendered: Rendered) -> None:
        """The suburb's own row closes the table."""
        _, now, before = now_and_before(rendered)
        g = rc.Group.of(now)
        whos = "agents" if rendered.case.kind is Kind.AGENTS else "agencies"
        moved = rc.signed(g.n - len(before)) if before else EN
        expected = (
            f"{now[0].suburb}, all {whos} {g.n} {moved} 100.0% {rc.money(g.median)} "
            f"{rc.money(g.value)} {rc.days(g.dom)}"
        )
        assert expected in rendered.text

    def test_chart_shares_match_the_table(self, rendered: Rendered) -> None:
        """Each bar of the chart carries the same share text as its table row."""
        rows, whole, _ = self.ranked(rendered)
        if len(rows) < 3:
            assert " · 100.0%" not in rendered.text  # no chart for one or two rows
            return
        for row in rows[:10]:
            assert f"{row.rank}. {row.name} " in rendered.text
            assert f"{row.now.n} · {rc.share(row.now.n, whole)}" in rendered.text


class TestRecentSales:
    """The ten most recent sales of the period, newest first."""

    def test_rows(self, rendered: Rendered) -> None:
        """Date, price, days on market and the agent (or agency), for each, in order."""
        _, now, _ = now_and_before(rendered)
        newest = sorted(now, key=lambda x: (-x.sold.toordinal(), x.address, x.agent))[:10]
        text = rendered.text.split("Recent sales")[-1]
        at = 0
        for sale in newest:
            who = sale.agent if rendered.case.kind is Kind.AGENTS else sale.agency
            expected = f"{rc.money(sale.price)} {sale.dom} {who}"
            found = text.find(expected, at)
            assert found >= at, expected
            assert f"{sale.sold.day} {sale.sold:%b %Y}" in text[max(0, found - 80) : found]
            at = found + len(expected)


class TestProfile:
    """The highlighted agent's or agency's profile."""

    def test_profile_figures(self, rendered: Rendered) -> None:
        """Sales, change, share and medians of the highlighted name against the suburb."""
        if rendered.case.highlight is None:
            assert "at a glance" not in rendered.text
            return
        _, now, before = now_and_before(rendered)

        def name_of(x: rc.Row) -> str:
            return x.agent if rendered.case.kind is Kind.AGENTS else x.agency

        wanted = rendered.case.highlight.casefold()
        mine = [x for x in now if name_of(x).casefold() == wanted]
        earlier = [x for x in before if name_of(x).casefold() == wanted]
        g, s = rc.Group.of(mine), rc.Group.of(now)
        shown = name_of(mine[0])
        t = rendered.text
        assert f"{shown} at a glance" in t
        moved = rc.signed(g.n - len(earlier)) if before else EN
        assert f"Properties sold {g.n} {moved} {s.n} {rc.share(g.n, s.n)} of sales" in t
        assert f"Median price {rc.money(g.median)} " in t
        assert f"Sales value {rc.money(g.value)} " in t
        assert f"{rc.money(s.value)} {rc.share(g.value, s.value)} of value" in t
        gap = g.dom - s.dom
        word = (
            "the suburb's median"
            if gap == 0
            else f"{rc.days(abs(gap))} {'day' if abs(gap) == 1 else 'days'} "
            f"{'slower' if gap > 0 else 'faster'}"
        )
        assert f"Median days on market {rc.days(g.dom)} " in t
        assert f"{rc.days(s.dom)} {word}" in t
        if rendered.case.kind is Kind.AGENCY:
            agents: dict[str, list[rc.Row]] = {}
            for x in mine:
                agents.setdefault(x.agent, []).append(x)
            for agent, theirs in agents.items():
                a = rc.Group.of(theirs)
                assert (
                    f"{agent} {a.n} {rc.share(a.n, g.n)} {rc.money(a.median)} "
                    f"{rc.money(a.value)} {rc.days(a.dom)}" in t
                )


class TestPages:
    """What every report page carries, and what no client page may carry."""

    def test_no_job_id_on_the_pages(self, rendered: Rendered) -> None:
        """The job id is only in the PDF's metadata."""
        assert JOB_ID not in rendered.text

    def test_page_numbers(self, rendered: Rendered) -> None:
        """Every page after the cover says "Page X of Y"."""
        for page in range(2, rendered.pages + 1):
            assert f"Page {page} of {rendered.pages}" in rendered.text

    def test_no_wrong_plurals(self, rendered: Rendered) -> None:
        """No "1 months", "1 sales", "1 agents"."""
        assert not re.search(r"\b1 (months|sales|agents|agencies|properties|days)\b", rendered.text)


@pytest.fixture(scope="module")
def agents(trap_rows: tuple[Path, list[rc.Row]]) -> Rendered:
    path, rows = trap_rows
    return render(TRAP_CASES[0], CsvSalesSource(path, columns=COLUMNS), rows)


class TestTraps:
    """The trap CSV's special cases, asserted by name."""

    def test_boundary_days(self, agents: Rendered) -> None:
        """1 November 2025 and 31 October 2026 count; 31 October 2025 is the previous period."""
        assert "PROPERTIES SOLD 11 +266.7% vs 3" in agents.text
        assert "31 Oct 2026 1 Edge Street" in agents.text
        # Alpha Realty: 1 November 2025 and 14 February 2026 now, 31 October 2025 before.
        assert any(line.startswith("5 Sam Lee Alpha Realty 2 +1 ") for line in agents.lines)

    def test_mover_has_a_row_per_agency(self, agents: Rendered) -> None:
        """Sam Lee is listed at Alpha Realty and at Beta Property, with the sales made at each."""
        assert any(line.startswith("2 Sam Lee Beta Property 2 ") for line in agents.lines)
        assert any(line.startswith("5 Sam Lee Alpha Realty 2 ") for line in agents.lines)
        assert "Sam Lee sold for 2 agencies in Testville" in agents.text
        assert "ranking 2nd at Beta Property and 5th at Alpha Realty" in agents.text

    def test_ties_break_on_value_then_name(self, agents: Rendered) -> None:
        """Bo Yu and Cy Zed tie on sales and value: Bo Yu first."""
        assert agents.text.find(" Bo Yu Gamma Homes 2 ") < agents.text.find(
            " Cy Zed Gamma Homes 2 "
        )

    def test_median_between_two_sales_shows_cents(self, agents: Rendered) -> None:
        """Sam Lee at Beta Property: $1,250,000 and $1,475,001 -> $1,362,500.50."""
        assert "$1,362,500.50" in agents.text
