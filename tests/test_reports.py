"""Reports end to end: the PDFs, the figures behind them, the chart and the data source.

The figures in the PDF are checked against a recomputation from the raw CSV rows with the
``csv`` and ``statistics`` modules, not against the project's own analytics.
"""

from __future__ import annotations

import csv
import io
import pickle
import re
import statistics
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pypdf
import pytest

from agentlink.errors import ConfigurationError, NoSalesDataError, PermanentJobError
from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.reports import CsvSalesSource, RenderedReport, Sale, make_report, sample_source
from agentlink.reports.analytics import Standing, analyse, analyse_sales, months_before
from agentlink.reports.charts import leaders_chart
from agentlink.reports.sources import PropertyType

SHIPPED = resources.files("agentlink.reports") / "data" / "sample_sales.csv"
JOB_ID = "01JTESTJOB0000000000000000"
GENERATED_AT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def render(kind: Kind, suburb: str = "Manly", period_end: date | None = None) -> RenderedReport:
    wanted = ReportSpec(kind=kind, suburb=suburb, state=AuState.NSW, period_end=period_end)
    return make_report(wanted, job_id=JOB_ID, source=sample_source(), generated_at=GENERATED_AT)


def pdf_text(report: RenderedReport) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(report.pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def manly_rows_last_12_months() -> list[dict[str, str]]:
    """Manly's sales in the 12 months to its latest sale, straight from the CSV."""
    with SHIPPED.open("r", encoding="utf-8") as file:
        rows = [r for r in csv.DictReader(file) if (r["suburb"], r["state"]) == ("Manly", "NSW")]
    end = max(date.fromisoformat(r["sold_date"]) for r in rows)
    start = end.replace(year=end.year - 1)
    return [r for r in rows if start < date.fromisoformat(r["sold_date"]) <= end]


def leader(rows: list[dict[str, str]], key: str) -> tuple[tuple[str, ...], list[dict[str, str]]]:
    """The group of rows with most sales, then highest total, then first name."""
    groups: defaultdict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[(row["agent"], row["agency"]) if key == "agent" else (row["agency"],)].append(row)
    return min(
        groups.items(), key=lambda g: (-len(g[1]), -sum(int(r["price"]) for r in g[1]), g[0])
    )


def dollars(value: float) -> str:
    return f"${value:,.0f}"


@pytest.fixture(scope="module")
def agents_report() -> RenderedReport:
    return render(Kind.AGENTS, suburb="manly")


@pytest.fixture(scope="module")
def agency_report() -> RenderedReport:
    return render(Kind.AGENCY)


class TestAgentsReport:
    """The Manly agents report, read back with pypdf."""

    def test_page_count_matches(self, agents_report: RenderedReport) -> None:
        """RenderedReport.pages is the PDF's page count, and the report has a cover and more."""
        reader, _ = pdf_text(agents_report)
        assert len(reader.pages) == agents_report.pages >= 3

    def test_top_agent_row_matches_the_raw_data(self, agents_report: RenderedReport) -> None:
        """The leader's name, agency, sales, share and median price are the CSV's."""
        rows = manly_rows_last_12_months()
        (agent, agency), theirs = leader(rows, "agent")
        median = statistics.median(int(r["price"]) for r in theirs)
        share = f"{len(theirs) / len(rows):.1%}"
        _, text = pdf_text(agents_report)
        assert f"1 {agent} {agency} {len(theirs)} {share} {dollars(median)}" in text

    def test_title_uses_the_data_spelling(self, agents_report: RenderedReport) -> None:
        """A request for "manly" is titled "Manly, NSW"."""
        assert agents_report.title == "Agents report — Manly, NSW"
        assert agents_report.suburb == "Manly"

    def test_period_is_the_twelve_months_to_the_latest_sale(
        self, agents_report: RenderedReport
    ) -> None:
        """Without an end date the period ends on Manly's latest sale."""
        latest = max(date.fromisoformat(r["sold_date"]) for r in manly_rows_last_12_months())
        assert agents_report.period_end == latest
        assert agents_report.period_start == latest.replace(year=latest.year - 1) + timedelta(1)

    def test_metadata(self, agents_report: RenderedReport) -> None:
        """Title, author and job id are in the PDF's document information."""
        reader, _ = pdf_text(agents_report)
        assert reader.metadata is not None
        assert reader.metadata.title == "Agents report — Manly, NSW"
        assert reader.metadata.author == "AgentLink"
        assert str(reader.metadata["/jobid"]) == JOB_ID

    def test_pages_are_numbered_and_headed(self, agents_report: RenderedReport) -> None:
        """Inner pages carry the running title and "Page X of Y"."""
        reader, _ = pdf_text(agents_report)
        second = reader.pages[1].extract_text()
        assert f"Page 2 of {agents_report.pages}" in second
        assert "Agents report — Manly, NSW" in second


class TestAgencyReport:
    """The Manly agency report, read back with pypdf."""

    def test_page_count_matches(self, agency_report: RenderedReport) -> None:
        """RenderedReport.pages is the PDF's page count."""
        reader, _ = pdf_text(agency_report)
        assert len(reader.pages) == agency_report.pages >= 3

    def test_top_agency_row_matches_the_raw_data(self, agency_report: RenderedReport) -> None:
        """The leading agency's agents, sales, share and median price are the CSV's."""
        rows = manly_rows_last_12_months()
        (agency,), theirs = leader(rows, "agency")
        agents = len({r["agent"] for r in theirs})
        median = statistics.median(int(r["price"]) for r in theirs)
        share = f"{len(theirs) / len(rows):.1%}"
        _, text = pdf_text(agency_report)
        assert f"1 {agency} {agents} {len(theirs)} {share} {dollars(median)}" in text

    def test_metadata(self, agency_report: RenderedReport) -> None:
        """The title names the agency report; the job id is present."""
        reader, _ = pdf_text(agency_report)
        assert reader.metadata is not None
        assert reader.metadata.title == agency_report.title == "Agency report — Manly, NSW"
        assert str(reader.metadata["/jobid"]) == JOB_ID

    def test_names_are_escaped_in_the_html(self) -> None:
        """Markup in a name is printed as text, not interpreted."""
        sales = [sale(agency="Smith <b>& Co</b>", agent="Al <i>")] * 3
        report = make_report(
            ReportSpec(kind=Kind.AGENCY, suburb="Testville", state=AuState.NSW),
            job_id=JOB_ID,
            source=ListSource(sales),
            generated_at=GENERATED_AT,
        )
        _, text = pdf_text(report)
        assert "1 Smith <b>& Co</b> 1 3 100.0%" in text  # the ranking table row


class TestNoData:
    """Reports that cannot be made fail permanently, with a message a person can act on."""

    def test_unknown_suburb(self) -> None:
        """A suburb with no sales at all is named in the error."""
        with pytest.raises(NoSalesDataError, match=r"^no sales recorded for Nowhere, NSW$"):
            render(Kind.AGENTS, suburb="Nowhere")

    def test_misspelt_suburb_gets_a_suggestion(self) -> None:
        """A near miss in the same state suggests the right spelling."""
        with pytest.raises(NoSalesDataError, match="did you mean Manly, NSW"):
            render(Kind.AGENTS, suburb="Manli")

    def test_suburb_in_another_state_is_suggested(self) -> None:
        """Asking for Manly in VIC points to Manly, NSW."""
        spec = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.VIC)
        with pytest.raises(NoSalesDataError, match="did you mean Manly, NSW"):
            analyse(spec, sample_source())

    def test_empty_period_names_the_period(self) -> None:
        """A known suburb with no sales in the period says which period."""
        with pytest.raises(
            NoSalesDataError, match="from 1 February 2019 to 31 January 2020"
        ) as caught:
            render(Kind.AGENCY, period_end=date(2020, 1, 31))
        assert isinstance(caught.value, PermanentJobError)


def sale(
    sold: date = date(2026, 6, 15),
    *,
    price: int = 1_000_000,
    agent: str = "Ann Lee",
    agency: str = "Bluegum Property",
    days_on_market: int = 20,
    suburb: str = "Testville",
) -> Sale:
    return Sale(
        sold, "1 High Street", suburb, AuState.NSW, "2000", price, PropertyType.HOUSE, 3,
        days_on_market, agent, agency,
    )  # fmt: skip


class ListSource:
    """A SalesSource over a list, for figures small enough to check by hand."""

    def __init__(self, sales: Sequence[Sale]) -> None:
        self._sales = sales

    def sales(
        self, suburb: str, state: AuState, start: date | None = None, end: date | None = None
    ) -> Sequence[Sale]:
        return [
            s
            for s in self._sales
            if s.suburb.casefold() == suburb.casefold()
            and s.state == state
            and (start is None or s.sold_date >= start)
            and (end is None or s.sold_date <= end)
        ]


def spec(period_months: int = 12, period_end: date | None = None) -> ReportSpec:
    return ReportSpec(
        kind=Kind.AGENTS,
        suburb="Testville",
        state=AuState.NSW,
        period_months=period_months,
        period_end=period_end,
    )


class TestAnalytics:
    """Ranking order, period boundaries and medians on hand-made sales."""

    def test_ties_break_on_total_then_name(self) -> None:
        """Equal counts rank by total sold, then alphabetically."""
        sales = [
            sale(agent="Cy Zed", price=500_000),
            sale(agent="Cy Zed", price=500_000),
            sale(agent="Bo Yu", price=900_000),
            sale(agent="Bo Yu", price=900_000),
            sale(agent="Al Ax", price=500_000),
            sale(agent="Al Ax", price=500_000),
            sale(agent="Di Oh", price=9_000_000),
        ]
        ranked = analyse_sales(spec(), sales).agents
        assert [(r.rank, r.name) for r in ranked] == [
            (1, "Bo Yu"),
            (2, "Al Ax"),
            (3, "Cy Zed"),
            (4, "Di Oh"),
        ]

    def test_same_name_at_two_agencies_is_two_agents(self) -> None:
        """An agent is a name at an agency; the agency report counts agencies."""
        sales = [sale(agency="North"), sale(agency="South"), sale(agency="South")]
        analysis = analyse_sales(spec(), sales)
        assert [(r.name, r.agency, r.sales) for r in analysis.agents] == [
            ("Ann Lee", "South", 2),
            ("Ann Lee", "North", 1),
        ]
        assert [(r.name, r.agents) for r in analysis.agencies] == [("South", 1), ("North", 1)]

    def test_period_start_is_exclusive_and_end_inclusive(self) -> None:
        """One month to 31 March: 28 Feb out, 1 and 31 March in, 1 April out."""
        days = [date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 31), date(2026, 4, 1)]
        analysis = analyse(
            spec(period_months=1, period_end=date(2026, 3, 31)),
            ListSource([sale(day) for day in days]),
        )
        assert analysis.summary.sales == 2
        assert analysis.summary.period.first_day == date(2026, 3, 1)

    def test_default_period_ends_on_the_latest_sale(self) -> None:
        """Twelve months back from the latest sale: that same day a year earlier is out."""
        days = [date(2026, 6, 15), date(2025, 6, 16), date(2025, 6, 15)]
        summary = analyse_sales(spec(), [sale(day) for day in days]).summary
        assert (summary.period.end, summary.sales) == (date(2026, 6, 15), 2)

    def test_months_before_clamps_to_month_end(self) -> None:
        """31 March minus one month is the last day of February, leap years included."""
        assert months_before(date(2024, 3, 31), 1) == date(2024, 2, 29)
        assert months_before(date(2026, 1, 15), 13) == date(2024, 12, 15)

    def test_suburb_match_is_case_insensitive_and_display_comes_from_data(self) -> None:
        """ "TESTVILLE" finds Testville's sales and reports them as "Testville"."""
        loud = ReportSpec(kind=Kind.AGENTS, suburb="TESTVILLE", state=AuState.NSW)
        summary = analyse(loud, ListSource([sale()])).summary
        assert (summary.suburb, summary.sales) == ("Testville", 1)

    def test_medians_shares_and_totals(self) -> None:
        """Even counts average the middle pair; shares are by count."""
        sales = [
            sale(price=1_000_000, days_on_market=10),
            sale(price=2_000_000, days_on_market=21),
            sale(agent="Bo Yu", price=7_000_000, days_on_market=90),
        ]
        analysis = analyse_sales(spec(), sales)
        top = analysis.agents[0]
        assert (top.median_price, top.total_price, top.median_days_on_market) == (
            1_500_000,
            3_000_000,
            15.5,
        )
        assert top.share == pytest.approx(2 / 3)
        assert analysis.summary.median_price == 2_000_000


class TestChart:
    """The leaders chart is well-formed SVG whatever the names contain."""

    def standings(self, count: int, name: str = "Agent") -> list[Standing]:
        return [
            Standing(i + 1, f"{name} {i}", "O'Rourke & Vance", 1, 30 - i, 1, 1.0, 1.0, 0.1)
            for i in range(count)
        ]

    def test_escapes_ampersands_and_quotes(self) -> None:
        """ "&" and "'" come out as entities and parse back to the names."""
        svg = leaders_chart(self.standings(2, name="Smith & <Jones>"))
        assert "&amp;" in svg
        assert "& " not in svg
        texts = [el.text for el in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
        assert "Smith & <Jones> 0" in texts
        assert "O'Rourke & Vance" in texts

    def test_shows_at_most_ten_leaders(self) -> None:
        """Twelve agents make ten bars, the first for the leader."""
        svg = ET.fromstring(leaders_chart(self.standings(12)))
        bars = list(svg.iter("{http://www.w3.org/2000/svg}rect"))
        assert len(bars) == 10
        widths = [float(bar.get("width", "0")) for bar in bars]
        assert widths == sorted(widths, reverse=True)


class TestCsvSalesSource:
    """Parsing, indexing and clear errors for operator-supplied files."""

    HEADER = (
        "sold_date,address,suburb,state,postcode,price,property_type,bedrooms,"
        "days_on_market,agent,agency\n"
    )
    ROW = "2026-03-01,1 High Street,Manly,NSW,2095,{price},house,3,20,Ann Lee,Bluegum\n"

    def write(self, tmp_path: Path, *prices: str) -> Path:
        path = tmp_path / "sales.csv"
        path.write_text(self.HEADER + "".join(self.ROW.format(price=p) for p in prices))
        return path

    def test_bounds_are_inclusive_and_suburb_case_insensitive(self, tmp_path: Path) -> None:
        """Dates equal to start or end are included; "MANLY" finds "Manly"."""
        source = CsvSalesSource(self.write(tmp_path, "100"))
        day = date(2026, 3, 1)
        assert len(source.sales("MANLY", AuState.NSW, day, day)) == 1
        assert source.sales("Manly", AuState.NSW, date(2026, 3, 2)) == ()
        assert source.sales("Manly", AuState.VIC) == ()

    def test_bad_row_names_file_and_line(self, tmp_path: Path) -> None:
        """A malformed price on the third line says so."""
        path = self.write(tmp_path, "100", "lots")
        with pytest.raises(ConfigurationError, match=re.escape(f"{path}: line 3: price 'lots'")):
            CsvSalesSource(path).load()

    def test_spreadsheet_export_with_byte_order_mark(self, tmp_path: Path) -> None:
        """A UTF-8 file starting with a BOM, as Excel writes them, still parses."""
        path = self.write(tmp_path, "100")
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        assert [s.price for s in CsvSalesSource(path).sales("Manly", AuState.NSW)] == [100]

    def test_missing_file_is_named(self, tmp_path: Path) -> None:
        """A file that does not exist is named in the error."""
        with pytest.raises(ConfigurationError, match=re.escape("nope.csv")):
            CsvSalesSource(tmp_path / "nope.csv").sales("Manly", AuState.NSW)

    def test_pickles_to_the_shared_instance(self) -> None:
        """A render process gets the process-wide parsed source, not a fresh copy."""
        assert pickle.loads(pickle.dumps(sample_source())) is sample_source()
        job = (spec(), GENERATED_AT, make_report)
        assert pickle.loads(pickle.dumps(job)) == job
