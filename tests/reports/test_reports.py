"""Reports end to end: the PDF as a document (metadata, pages, fonts, brand, highlight,
thin and missing data), and the pieces that write its figures (periods, formats, prose).

Every figure of the reports is recounted from raw rows in test_report_figures.py.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path

import msgspec
import pypdf
import pytest

from agentlink.errors import HighlightNotFoundError, NoSalesDataError, PermanentJobError
from agentlink.jobs import AuState, Kind, ReportSpec, entry_fields
from agentlink.report_settings import BrandSettings
from agentlink.reports import RenderedReport, Sale, make_report, sample_source
from agentlink.reports.analytics import analyse, analyse_sales
from agentlink.reports.brand import brand_of
from agentlink.reports.format import (
    change_days,
    change_percent,
    money,
    money_short,
    percent,
    signed,
)
from agentlink.reports.narrative import overview_lede
from agentlink.reports.periods import Month, Period, period_ending
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


def outline(reader: pypdf.PdfReader) -> list[tuple[int, str, int]]:
    found: list[tuple[int, str, int]] = []

    def walk(items: Sequence[object], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                found.append((depth, item.title, reader.get_destination_page_number(item) + 1))  # type: ignore[attr-defined]

    walk(reader.outline, 0)
    return found


def tiny_png() -> bytes:
    """A valid 2x1 red PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    raw = b"\x00" + b"\xff\x00\x00" * 2
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def agents_report() -> RenderedReport:
    return render(Kind.AGENTS, "manly", highlight="Marco Chen")


@pytest.fixture(scope="module")
def agency_report() -> RenderedReport:
    return render(Kind.AGENCY)


class TestDocument:
    """Metadata, outline, page furniture and the typeface."""

    def test_metadata_carries_the_job_id_not_the_pages(self, agents_report: RenderedReport) -> None:
        """Title, author (the brand), /jobid in the document info; the id on no page."""
        reader, text = read(agents_report)
        assert reader.metadata is not None
        assert reader.metadata.title == agents_report.title == "Agents report — Manly, NSW"
        assert reader.metadata.author == "AgentLink"
        assert str(reader.metadata["/jobid"]) == JOB_ID
        assert JOB_ID not in text

    def test_pages_count_and_data_spelling(self, agents_report: RenderedReport) -> None:
        """RenderedReport.pages is the PDF's page count; "manly" is reported as "Manly"."""
        reader, _ = read(agents_report)
        assert len(reader.pages) == agents_report.pages >= 4
        assert agents_report.suburb == "Manly"
        assert (agents_report.period_start, agents_report.period_end) == (
            date(2025, 11, 1),
            date(2026, 10, 31),
        )

    def test_bookmarks_per_section(self, agents_report: RenderedReport) -> None:
        """One top-level bookmark per section, in page order."""
        reader, _ = read(agents_report)
        top = [(title, page) for depth, title, page in outline(reader) if depth == 0]
        titles = [title for title, _ in top]
        assert titles == [
            "Cover",
            "Market overview",
            "Agent rankings",
            "Marco Chen at a glance",
            "Recent sales",
            "About this report",
        ]
        pages = [page for _, page in top]
        assert pages == sorted(pages)
        assert pages[:3] == [1, 2, 3]

    def test_running_header_and_footer(self, agents_report: RenderedReport) -> None:
        """Inner pages carry the brand, the report's title line and "Page X of Y"; not the cover."""
        reader, _ = read(agents_report)
        cover = reader.pages[0].extract_text()
        assert "Page 1 of" not in cover
        for number, page in enumerate(reader.pages[1:], start=2):
            text = page.extract_text()
            assert f"Page {number} of {agents_report.pages}" in text
            assert "Manly NSW · Agents report · November 2025 – October 2026" in text
            assert text.startswith("AgentLink") or "\nAgentLink" in text or "AgentLink " in text

    def test_ranking_header_repeats_on_every_page_of_the_table(
        self, agents_report: RenderedReport
    ) -> None:
        """The ranking spans two pages; both start the table with its header row."""
        reader, _ = read(agents_report)
        pages = [" ".join(p.extract_text().split()) for p in reader.pages]
        holding = [text for text in pages if " Marco Chen Tallowwood Realty Manly " in text or
                   " Manly, all agents 305 " in text]  # fmt: skip
        assert len(holding) == 2
        for text in holding:
            assert "RANK AGENT AGENCY PROPERTIES SOLD CHANGE IN SALES SHARE OF SALES" in text

    def test_only_the_shipped_typeface_is_embedded(self, agency_report: RenderedReport) -> None:
        """Inter, in the weights the stylesheet uses; no system fallback font."""
        reader, _ = read(agency_report)
        fonts = {
            str(font.get_object()["/BaseFont"]).split("+", 1)[1]
            for page in reader.pages
            for font in (page["/Resources"].get("/Font") or {}).values()
        }
        assert fonts == {"Inter", "Inter-Medium", "Inter-Semi-Bold"}

    def test_typeface_ships_with_its_licence(self) -> None:
        """The OFL text sits beside the font files."""
        fonts = resources.files("agentlink.reports") / "fonts"
        assert "SIL OPEN FONT LICENSE Version 1.1" in (fonts / "OFL.txt").read_text("utf-8")
        assert (fonts / "Inter-Regular.otf").read_bytes()[:4] == b"OTTO"


@pytest.fixture(scope="module")
def branded(tmp_path_factory: pytest.TempPathFactory) -> RenderedReport:
    logo = tmp_path_factory.mktemp("brand") / "logo.png"
    logo.write_bytes(tiny_png())
    brand = BrandSettings(
        name="Harbour & Co Property", logo=logo, primary="#0f3b3a", accent="#d9a441",
        contact="02 9977 0000 · hello@harbourco.example",
    )  # fmt: skip
    return render(Kind.AGENCY, brand=brand)


class TestBrand:
    """The agency's name, logo, colours and contact line."""

    def test_name_contact_and_author(self, branded: RenderedReport) -> None:
        """The brand prepares the report, heads the pages, signs the footer and the metadata."""
        reader, text = read(branded)
        assert "Prepared by Harbour & Co Property" in text
        assert reader.metadata is not None
        assert reader.metadata.author == "Harbour & Co Property"
        second = reader.pages[1].extract_text()
        assert "Harbour & Co Property" in second
        assert "02 9977 0000 · hello@harbourco.example" in second
        assert "Prepared by AgentLink" not in text

    def test_logo_replaces_the_wordmark(self, branded: RenderedReport) -> None:
        """The cover draws the logo image (the name is then not written as text there)."""
        reader, _ = read(branded)
        cover = reader.pages[0]
        assert cover["/Resources"].get("/XObject")
        assert not cover.extract_text().startswith("Harbour & Co Property")

    def test_readable_text_on_any_primary_colour(self) -> None:
        """White on dark primaries, ink on light ones; a pale accent is darkened for text."""
        assert brand_of(BrandSettings(primary="#0f3b3a")).on_primary == "#ffffff"
        assert brand_of(BrandSettings(primary="#f5e663")).on_primary == "#1b2430"
        assert brand_of(BrandSettings(accent="#ffee99")).accent_ink != "#ffee99"
        assert brand_of(BrandSettings(accent="#7a1f1f")).accent_ink == "#7a1f1f"


class TestHighlight:
    """The request's highlight: found case-insensitively, or a clear failure."""

    def test_cover_names_the_presenter(self, agents_report: RenderedReport) -> None:
        """The highlighted agent presents the report, with their agency."""
        _, text = read(agents_report)
        assert "Presented by Marco Chen, Tallowwood Realty Manly" in text

    def test_row_outside_the_top_ten_joins_the_chart(self) -> None:
        """Rank 14 is drawn after the leaders, behind a break."""
        _, text = read(render(Kind.AGENTS, highlight="matilda FRASER"))
        assert "10. Harper Clarke" in text
        assert "… 14. Matilda Fraser Kestrel Real Estate 5 · 1.6%" in text
        assert "11. Imogen Wilson" not in text

    def test_unknown_name_fails_with_suggestions(self) -> None:
        """A misspelt agent is a permanent failure that suggests the name."""
        with pytest.raises(HighlightNotFoundError) as caught:
            render(Kind.AGENTS, highlight="Marco Chenn")
        message = str(caught.value)
        assert message.startswith(
            "highlight 'Marco Chenn': no agent of that name has sales in Manly, NSW in "
            "November 2025 – October 2026"
        )
        assert "did you mean Marco Chen" in message
        assert "send the request without highlight" in message
        assert isinstance(caught.value, PermanentJobError)

    def test_name_with_earlier_sales_says_when(self) -> None:
        """An agent with sales only before the period is told when the latest was."""
        with pytest.raises(
            HighlightNotFoundError, match=r"their latest recorded sale there was on \d+ \w+ 20\d\d"
        ):
            render(Kind.AGENTS, period_months=1, highlight="Tomasz Chen")

    def test_absent_highlight_leaves_the_stream_entry_as_before(self) -> None:
        """Without a highlight the encoded spec has no highlight key (same payload and hash)."""
        plain = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW)
        assert "highlight" not in msgspec.json.decode(entry_fields("j", plain, "t")["payload"])
        marked = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW, highlight="Ann")
        assert msgspec.json.decode(entry_fields("j", marked, "t")["payload"])["highlight"] == "Ann"


class TestThinAndMissingData:
    """One sale gives an honest short report; no sales a clear failure."""

    def test_one_sale(self) -> None:
        """Coral Bay: a three-page report, no chart, no bands, no changes, right plurals."""
        report = render(Kind.AGENCY, "Coral Bay", AuState.WA)
        _, text = read(report)
        assert report.pages == 3
        assert "1 property sold in Coral Bay in August 2025 – July 2026 (12 months)" in text
        assert "No sales were recorded in the previous 12 months" in text
        assert "too few for a price distribution" in text
        assert "1 agency with sales" in text
        assert "The one sale recorded in Coral Bay in the period." in text
        assert "1. " not in text  # no leaders chart for a single row

    def test_one_month_period_is_a_calendar_month(self) -> None:
        """period_months=1 ending 28 February 2026 is February 2026: 1 month, every day of it."""
        report = render(Kind.AGENTS, period_months=1, period_end=date(2026, 2, 28))
        _, text = read(report)
        assert (report.period_start, report.period_end) == (date(2026, 2, 1), date(2026, 2, 28))
        assert "February 2026 · 1 month " in text
        assert "1 months" not in text

    def test_unknown_suburb(self) -> None:
        """A suburb with no sales at all is named in the error."""
        with pytest.raises(NoSalesDataError, match=r"^no sales recorded for Nowhere, NSW$"):
            render(Kind.AGENTS, "Nowhere")

    def test_misspelt_suburb_gets_a_suggestion(self) -> None:
        """A near miss in the same state suggests the right spelling."""
        with pytest.raises(NoSalesDataError, match="did you mean Manly, NSW"):
            render(Kind.AGENTS, "Manli")

    def test_suburb_in_another_state_is_suggested(self) -> None:
        """Asking for Manly in VIC points to Manly, NSW."""
        with pytest.raises(NoSalesDataError, match="did you mean Manly, NSW"):
            analyse(
                ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.VIC), sample_source()
            )

    def test_empty_period_names_the_period(self) -> None:
        """A known suburb with no sales in the period says which months, and what there is."""
        with pytest.raises(
            NoSalesDataError,
            match=r"in February 2019 – January 2020 \(12 months\); sales on record run from "
            "November 2024 to October 2026",
        ):
            render(Kind.AGENCY, period_end=date(2020, 1, 31))

    def test_names_are_escaped(self) -> None:
        """Markup in a name is printed as text, not interpreted."""
        sales = [sale(agency="Smith <b>& Co</b>", agent="Al <i>")] * 3
        report = make_report(
            ReportSpec(kind=Kind.AGENCY, suburb="Testville", state=AuState.NSW),
            job_id=JOB_ID, source=ListSource(sales), generated_at=GENERATED_AT,
        )  # fmt: skip
        _, text = read(report)
        assert "1 Smith <b>& Co</b> 1 3 – 100.0%" in text


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


class TestPeriods:
    """Whole calendar months, named as people name them."""

    @pytest.mark.parametrize(
        ("end", "months", "label", "first", "last"),
        [
            (
                date(2026, 10, 24),
                12,
                "November 2025 – October 2026",
                date(2025, 11, 1),
                date(2026, 10, 31),
            ),
            (date(2026, 2, 1), 1, "February 2026", date(2026, 2, 1), date(2026, 2, 28)),
            (date(2024, 2, 10), 1, "February 2024", date(2024, 2, 1), date(2024, 2, 29)),
            (date(2026, 5, 31), 3, "March – May 2026", date(2026, 3, 1), date(2026, 5, 31)),
            (
                date(2026, 1, 31),
                13,
                "January 2025 – January 2026",
                date(2025, 1, 1),
                date(2026, 1, 31),
            ),
        ],
    )
    def test_period_ending(
        self, end: date, months: int, label: str, first: date, last: date
    ) -> None:
        """The months ending with the month of ``end``."""
        period = period_ending(end, months)
        assert (period.label, period.first_day, period.end) == (label, first, last)
        assert period.length == ("1 month" if months == 1 else f"{months} months")

    def test_previous_period_and_membership(self) -> None:
        """The previous period abuts; days on either edge fall on the right side."""
        period = Period(Month(2026, 10), 12)
        assert period.previous == Period(Month(2025, 10), 12)
        assert date(2025, 11, 1) in period
        assert date(2025, 10, 31) not in period
        assert date(2025, 10, 31) in period.previous

    def test_default_period_is_the_month_of_the_latest_sale(self) -> None:
        """A latest sale on 3 March makes the period April – March, March included whole."""
        days = [date(2026, 3, 3), date(2025, 4, 1), date(2025, 3, 31)]
        a = analyse_sales(
            ReportSpec(kind=Kind.AGENTS, suburb="Testville", state=AuState.NSW),
            [sale(d) for d in days],
        )
        assert (a.period.label, a.current.sales, a.previous.sales) == (
            "April 2025 – March 2026",
            2,
            1,
        )


class TestFormats:
    """Money to the cent, one precision for shares, signed changes."""

    def test_money(self) -> None:
        """Whole dollars, with cents only when there are some."""
        assert (money(1_965_000.0), money(1_362_500.5), money(None)) == (
            "$1,965,000",
            "$1,362,500.50",
            "–",
        )
        assert (money_short(1_250_000), money_short(450_000), money_short(2_000_000)) == (
            "$1.25m",
            "$450k",
            "$2m",
        )

    def test_percent_rounds_half_up_to_one_decimal(self) -> None:
        """1/16 is 6.25% -> 6.3% (not banker's 6.2%); 1/3 is 33.3%."""
        assert (percent(Fraction(1, 16)), percent(Fraction(1, 3)), percent(Fraction(1))) == (
            "6.3%",
            "33.3%",
            "100.0%",
        )

    def test_changes(self) -> None:
        """A real minus sign; none for zero; days in words."""
        assert change_percent(Fraction(-141, 1000)) == "\u221214.1%"
        assert change_percent(None) == "–"
        assert signed(Decimal("0.0"), "%") == "0.0%"
        assert (change_days(24, 24), change_days(25, 24), change_days(22.5, 24)) == (
            "no change",
            "+1 day",
            "\u22121.5 days",
        )


class TestProse:
    """The overview's sentence reads right in every direction."""

    @pytest.mark.parametrize(
        ("before", "expected"),
        [
            (
                [2_000_000, 2_000_000],
                "That is as many as in the previous 12 months, "
                "and the median price held at $2,000,000.",
            ),
            (
                [1_000_000],
                "That is 1 more than in the previous 12 months, "
                "and the median price rose 100.0% to $2,000,000.",
            ),
            (
                [3_000_000] * 3,
                "That is 1 fewer than in the previous 12 months, "
                "and the median price fell 33.3% to $2,000,000.",
            ),
        ],
    )
    def test_direction(self, before: list[int], expected: str) -> None:
        """Same, more, fewer; held, rose, fell."""
        now = [sale(date(2026, 6, 1), price=2_000_000), sale(date(2026, 6, 2), price=2_000_000)]
        earlier = [sale(date(2025, 3, 1 + i), price=p) for i, p in enumerate(before)]
        a = analyse_sales(
            ReportSpec(kind=Kind.AGENTS, suburb="Testville", state=AuState.NSW), now + earlier
        )
        assert expected in overview_lede(a)


def test_sample_csv_is_packaged() -> None:
    """The CSV the sample source reads is the shipped one."""
    assert Path(str(resources.files("agentlink.reports") / "data" / "sample_sales.csv")).is_file()
