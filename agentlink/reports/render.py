"""Turn a ``ReportSpec`` into a finished PDF: analyse, fill the template, lay out.

``make_report`` is the one entry point the consumers call. It is a plain function of
picklable arguments so it can run in a separate render process, and it keeps what is
costly to build and identical for every report (the Jinja environment, the parsed
stylesheet, the font configuration) in module-level caches, so a long-lived render
process pays for them once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources

import jinja2
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

from agentlink.jobs import Kind, ReportSpec
from agentlink.reports.analytics import analyse, long_date
from agentlink.reports.charts import leaders_chart
from agentlink.reports.sources import SalesSource

PACKAGE = "agentlink.reports"
AUTHOR = "AgentLink"


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """A finished report and what the job record says about it."""

    pdf: bytes
    pages: int
    title: str
    suburb: str  # display spelling, from the data
    period_start: date  # first day counted
    period_end: date  # last day counted


def make_report(
    spec: ReportSpec, *, job_id: str, source: SalesSource, generated_at: datetime
) -> RenderedReport:
    """Render the report ``spec`` asks for, with ``job_id`` in its metadata.

    Raises ``NoSalesDataError`` when the suburb has no sales (in the period).
    """
    kind = Kind(spec.kind)  # a Struct built in code (not decoded) may hold a plain str
    analysis = analyse(spec, source)
    summary = analysis.summary
    noun = "Agents" if kind is Kind.AGENTS else "Agency"
    title = f"{noun} report — {summary.suburb}, {summary.state}"
    standings = analysis.standings(kind)
    html = (
        _environment()
        .get_template("report.html")
        .render(
            title=title,
            kind=kind.value,
            job_id=job_id,
            generated_at=generated_at,
            created=_w3c_datetime(generated_at),
            summary=summary,
            standings=standings,
            chart=Markup(leaders_chart(standings)),  # noqa: S704 - built escaped in charts.py
        )
    )
    stylesheet, fonts, fetcher = _layout_tools()
    document = HTML(string=html, url_fetcher=fetcher).render(
        stylesheets=[stylesheet], font_config=fonts
    )
    # custom_metadata turns <meta name="job-id"> into the PDF info entry /jobid
    # (WeasyPrint keeps only the alphanumeric characters of the name).
    pdf = document.write_pdf(custom_metadata=True)
    return RenderedReport(
        pdf=pdf,
        pages=len(document.pages),
        title=title,
        suburb=summary.suburb,
        period_start=summary.period.first_day,
        period_end=summary.period.end,
    )


def money(value: float) -> str:
    """``$2,450,000``: whole dollars with thousands separators."""
    return f"${value:,.0f}"


def money_short(value: float) -> str:
    """``$912.4m``: for headline figures too large to read digit by digit."""
    if value >= 1_000_000_000:
        return f"${value / 1_000_000_000:.2f}b"
    if value >= 10_000_000:
        return f"${value / 1_000_000:.1f}m"
    return money(value)


def percent(value: float) -> str:
    """``24.3%`` from a share between 0 and 1."""
    return f"{value * 100:.1f}%"


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 agent``, ``26 agents``: a number with its noun in the right form."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def days(value: float) -> str:
    """A median number of days: ``24``, or ``23.5`` between two middle sales."""
    return f"{value:g}"


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
        money=money,
        money_short=money_short,
        percent=percent,
        days=days,
        count=count,
        long_date=long_date,
    )
    return env


@functools.cache
def _layout_tools() -> tuple[CSS, FontConfiguration, URLFetcher]:
    fonts = FontConfiguration()
    # Reports embed everything they show; refusing every URL scheme but data: means a
    # stray link in a template can never make a render wait on the network.
    fetcher = URLFetcher(allowed_protocols=("data",))
    css_text = (resources.files(PACKAGE) / "templates" / "report.css").read_text("utf-8")
    stylesheet = CSS(string=css_text, font_config=fonts, url_fetcher=fetcher)
    return stylesheet, fonts, fetcher


def _w3c_datetime(moment: datetime) -> str:
    # WeasyPrint accepts a time in <meta name="dcterms.created"> only with a UTC offset.
    if moment.utcoffset() is None:
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds")
