"""Reports end to end: the PDF as a document (metadata, pages, fonts, brand, highlight,
thin and missing data). The pieces that write its figures: test_report_pieces.py; every
figure recounted from raw rows: test_report_figures.py.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from datetime import date
from importlib import resources
from pathlib import Path

import msgspec
import pypdf
import pytest

from agentlink.errors import HighlightNotFoundError, NoSalesDataError, PermanentJobError
from agentlink.jobs import AuState, Kind, ReportSpec, entry_fields
from agentlink.report_settings import BrandSettings
from agentlink.reports import RenderedReport, make_report, sample_source
from agentlink.reports.analytics import analyse, analyse_sales
from agentlink.reports.brand import brand_of
from tests.support.reports import GENERATED_AT, JOB_ID, ListSource, read, render, sale


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
            HighlightNotFoundError,
            match=r"their latest sale there before \d+ \w+ 20\d\d was on \d+ \w+ 20\d\d",
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

    def test_latest_sale_is_the_period_s_own(self) -> None:
        """With period_end before later sales, the About section dates the period's latest sale
        and says so; analysing the whole history gives the same figure."""
        sales = [sale(date(2026, 3, 10)), sale(date(2025, 11, 5)), sale(date(2026, 9, 20))]
        spec = ReportSpec(
            kind=Kind.AGENTS,
            suburb="Testville",
            state=AuState.NSW,
            period_months=6,
            period_end=date(2026, 6, 15),
        )
        assert analyse(spec, ListSource(sales)).latest_sale == date(2026, 3, 10)
        assert analyse_sales(spec, sales).latest_sale == date(2026, 3, 10)
        report = make_report(
            spec, job_id=JOB_ID, source=ListSource(sales), generated_at=GENERATED_AT
        )
        _, text = read(report)
        assert "the latest sale in the period is dated 10 March 2026." in text
        assert "on record" not in text

    def test_highlight_s_latest_sale_is_before_the_period(self) -> None:
        """A name without sales in the period is told of its latest sale before it, never one
        after it, whether the source gave the whole history or the report's window."""
        sales = [
            sale(date(2026, 3, 10)),
            sale(date(2025, 11, 5), agent="Bo Old"),
            sale(date(2026, 9, 20), agent="Bo Old"),
        ]
        spec = ReportSpec(
            kind=Kind.AGENTS,
            suburb="Testville",
            state=AuState.NSW,
            period_months=6,
            period_end=date(2026, 6, 15),
            highlight="Bo Old",
        )
        said = "(their latest sale there before 1 January 2026 was on 5 November 2025)"
        for attempt in (
            lambda: analyse(spec, ListSource(sales)),
            lambda: analyse_sales(spec, sales),
        ):
            with pytest.raises(HighlightNotFoundError) as caught:
                attempt()
            assert said in str(caught.value)

    def test_names_are_escaped(self) -> None:
        """Markup in a name is printed as text, not interpreted."""
        sales = [sale(agency="Smith <b>& Co</b>", agent="Al <i>")] * 3
        report = make_report(
            ReportSpec(kind=Kind.AGENCY, suburb="Testville", state=AuState.NSW),
            job_id=JOB_ID, source=ListSource(sales), generated_at=GENERATED_AT,
        )  # fmt: skip
        _, text = read(report)
        assert "1 Smith <b>& Co</b> 1 3 – 100.0%" in text


def test_sample_csv_is_packaged() -> None:
    """The CSV the sample source reads is the shipped one."""
    assert Path(str(resources.files("agentlink.reports") / "data" / "sample_sales.csv")).is_file()
