"""Turn a ``ReportSpec`` into a finished PDF: analyse, fill the templates, lay out.

``make_report`` is the one entry point the consumers call. It is a plain function of
picklable arguments so it can run in a separate render process, and it keeps what is
costly to build and identical for every report (the Jinja environment, the parsed
stylesheet with its fonts, the logo) in module-level caches, so a long-lived render
process pays for them once.

Renders fetch nothing: the logo is inlined as a ``data:`` URI, and the URL fetcher serves
only ``data:`` URLs and the typeface files shipped in this package.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from agentlink.jobs import Kind, ReportSpec
from agentlink.report_settings import BrandSettings
from agentlink.reports import format as fmt
from agentlink.reports import narrative
from agentlink.reports.analytics import TREND_MONTHS, MarketAnalysis, Standing, analyse
from agentlink.reports.brand import Brand, brand_of
from agentlink.reports.charts import Palette, leaders_chart
from agentlink.reports.csv_source import CsvSalesSource
from agentlink.reports.figures import change, share
from agentlink.reports.highlight import normal
from agentlink.reports.market import PriceBand
from agentlink.reports.rendered import RenderedReport
from agentlink.reports.sales import Sale, SalesSource
from agentlink.reports.sources import describe
from agentlink.reports.trend_chart import trend_chart

PACKAGE = "agentlink.reports"
MIN_ROWS_FOR_CHART = 3


def make_report(
    spec: ReportSpec,
    *,
    job_id: str,
    source: SalesSource,
    generated_at: datetime,
    brand: BrandSettings | None = None,
) -> RenderedReport:
    """Render the report ``spec`` asks for, with ``job_id`` in its metadata (not its pages).

    Raises ``NoSalesDataError`` when the suburb has no sales (in the period),
    ``HighlightNotFoundError`` for an unknown ``highlight``, and the data source's errors.
    """
    kind = Kind(spec.kind)  # a Struct built in code (not decoded) may hold a plain str
    analysis = analyse(spec, source)
    look = brand_of(brand or BrandSettings())
    noun = "Agents" if kind is Kind.AGENTS else "Agency"
    title = f"{noun} report — {analysis.suburb}, {analysis.state}"
    context = _context(
        analysis,
        kind=kind,
        brand=look,
        title=title,
        job_id=job_id,
        generated_at=generated_at,
        source=describe(source),
    )
    html = _environment().get_template("report.html").render(context)
    stylesheet, fonts, fetcher = _layout_tools()
    with _collector_paused():
        document = HTML(string=html, url_fetcher=fetcher).render(
            stylesheets=[stylesheet], font_config=fonts
        )
        # custom_metadata turns <meta name="job-id"> into the PDF info entry /jobid
        # (WeasyPrint keeps only the alphanumeric characters of the name).
        pdf = document.write_pdf(custom_metadata=True)
        pages = len(document.pages)
        del document  # unreachable now, so the collection after the layout frees it
    return RenderedReport(
        pdf=pdf,
        pages=pages,
        title=title,
        suburb=analysis.suburb,
        period_start=analysis.period.first_day,
        period_end=analysis.period.end,
    )


def prepare(source: SalesSource) -> None:
    """Build what every render shares (templates, stylesheet, fonts) and read a file source
    now, so that the first report of a fresh render process is as quick as the next.

    A sales file that cannot be read or parsed raises its ``JobError`` here: the render
    process refuses to start on it (once running, a broken new version of the file is
    logged and the last good one keeps serving)."""
    _environment()
    _layout_tools()
    if isinstance(source, CsvSalesSource):
        source.load()


def _context(
    a: MarketAnalysis,
    *,
    kind: Kind,
    brand: Brand,
    title: str,
    job_id: str,
    generated_at: datetime,
    source: str,
) -> dict[str, Any]:
    standings = a.standings(kind)
    highlighted = frozenset(a.profile.ranks) if a.profile else frozenset()
    palette = Palette(bar=brand.primary, highlight=brand.accent)
    wanted = normal(a.profile.name) if a.profile else None

    def marked(sale: Sale) -> bool:
        return (
            wanted is not None
            and normal(sale.agent if kind is Kind.AGENTS else sale.agency) == wanted
        )

    chart = ""
    if len(standings) >= MIN_ROWS_FOR_CHART:
        chart = leaders_chart(standings, palette, highlighted=highlighted)
    return {
        "a": a,
        "kind": kind.value,
        "title": title,
        "brand": brand,
        "job_id": job_id,
        "generated_at": generated_at,
        "created": _w3c_datetime(generated_at),
        "source": source,
        "standings": standings,
        "highlighted": highlighted,
        "trend_months": TREND_MONTHS,
        "top_band": max((band.share for band in a.bands), default=Fraction(1)),
        "recent": [(sale, marked(sale)) for sale in a.recent],
        "kpis": narrative.kpis(a.current, a.previous),
        "overview_lede": narrative.overview_lede(a),
        "ranking_lede": narrative.ranking_lede(a, kind),
        "profile_lede": narrative.profile_lede(a, kind),
        # Built escaped in charts.py and trend_chart.py.
        "leaders_chart": Markup(chart),  # noqa: S704
        "trend_chart": Markup(trend_chart(a.months, a.period, palette)),  # noqa: S704
    }


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Run the cyclic garbage collector once after the layout, not many times during it.

    A render allocates a few hundred thousand objects that live until it ends, many of
    them in reference cycles (boxes point to their parents). With the collector on, they
    trigger about a hundred collections per report, including a full one that walks every
    object of the process, which costs a fifth of the render time (measured: 0.50 s ->
    0.40 s for the Manly agents report). Afterwards one collection of the youngest
    generation frees the render's cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def band_label(band: PriceBand) -> str:
    """``Under $1m``, ``$1m – $1.25m``, ``$5m and over``."""
    if band.low is None:
        return f"Under {fmt.money_short(band.high or 0)}"
    if band.high is None:
        return f"{fmt.money_short(band.low)} and over"
    return f"{fmt.money_short(band.low)} {fmt.NONE} {fmt.money_short(band.high)}"


def _sales_change(row: Standing, suburb_before: int) -> str:
    if not suburb_before:
        return fmt.NONE
    return fmt.signed(row.figures.sales - row.previous.sales)


def _rank_text(rows: tuple[Standing, ...], of: int) -> str:
    ranks = " and ".join(f"#{row.rank}" for row in rows)
    return f"ranked {ranks} of {of}"


def _property_text(sale: Sale) -> str:
    kind = sale.property_type.value.capitalize()
    return f"{kind}, {sale.bedrooms} bed" if sale.bedrooms else kind


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=fmt.money,
        percent=fmt.percent,
        change_percent=fmt.change_percent,
        change_points=fmt.change_points,
        change_days=fmt.change_days,
        days=fmt.days,
        count=fmt.count,
        signed=fmt.signed,
        long_date=fmt.long_date,
        short_date=fmt.short_date,
        thousands=lambda n: f"{n:,}",
        band_label=band_label,
        meter=lambda share, top: f"{float(share / top) * 100 if top else 0:.1f}",
        sales_change=_sales_change,
        fraction=Fraction,
        share_of=share,
        rank_text=_rank_text,
        property_text=_property_text,
        capitalize_first=lambda text: text[:1].upper() + text[1:],
    )
    env.globals.update(
        noun=fmt.noun,
        change=change,
        difference_money=narrative.difference_money,
        difference_days=narrative.difference_days,
    )
    return env


class _PackageFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint has no type hints
    """Serves ``data:`` URLs and the files of this package's ``fonts`` folder, nothing else."""

    def __init__(self, fonts: Path) -> None:
        super().__init__(allowed_protocols=("data", "file"))
        self._fonts = fonts.resolve()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> Any:
        if url.startswith("file:"):
            # Percent-decoded: a folder named "site packages" arrives as "site%20packages".
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).resolve()
            if path.parent != self._fonts:
                raise ValueError(f"reports may not read {url}")
            return URLFetcherResponse(url, body=_font_bytes(path))
        return super().fetch(url, headers)


@functools.cache
def _font_bytes(path: Path) -> bytes:
    return path.read_bytes()


@functools.cache
def _layout_tools() -> tuple[CSS, FontConfiguration, URLFetcher]:
    return layout_tools(Path(str(resources.files(PACKAGE))))


def layout_tools(package: Path) -> tuple[CSS, FontConfiguration, URLFetcher]:
    """The stylesheet, its fonts and the URL fetcher of this package installed at ``package``."""
    fonts = FontConfiguration()
    fetcher = _PackageFetcher(package / "fonts")
    css_text = (package / "templates" / "report.css").read_text("utf-8")
    stylesheet = CSS(
        string=css_text,
        base_url=(package / "templates").as_uri() + "/",
        font_config=fonts,
        url_fetcher=fetcher,
    )
    return stylesheet, fonts, fetcher


def _w3c_datetime(moment: datetime) -> str:
    # WeasyPrint accepts a time in <meta name="dcterms.created"> only with a UTC offset.
    if moment.utcoffset() is None:
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds")
