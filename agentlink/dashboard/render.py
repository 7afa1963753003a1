"""The dashboard's HTML: one Jinja2 environment over ``templates/``, autoescaped, with the
filters the pages share (times, durations, sizes, short job ids).

A page is a template that extends ``base.html``; each part of a page that refreshes itself
is a template of its own (``_<part>.html``), included by the page and served alone when a
request asks for ``?part=<name>`` (what ``static/dashboard.js`` fetches).
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any

import jinja2
from litestar import Response

from agentlink.dashboard.reads import duration

HTML = "text/html"
"""Litestar adds ``; charset=utf-8``."""
NO_STORE = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
}
"""Pages show live, private data: never cached, never framed (clickjacking); scripts only
from here (the charts' labels are placed by inline ``style`` attributes)."""


def _parse(iso: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ago(iso: str | None, now: datetime | None = None) -> str:
    """``"…T11:28:54+00:00"`` -> ``"3 min ago"`` (``"–"`` for none)."""
    moment = _parse(iso or "")
    if moment is None:
        return "–"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 1:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "d" else 1):
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def clock(iso: str | None) -> str:
    """An ISO time as ``2026-11-30 11:28:54 UTC`` (``"–"`` for none)."""
    moment = _parse(iso or "")
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(job_id: str | None) -> str:
    """A job id's first 8 characters, as inspect and the PDF file names show it."""
    return (job_id or "")[:8]


def mib(size: int | None) -> str:
    """Bytes as MiB (``"–"`` for none)."""
    return f"{size / 1048576:.0f} MiB" if size else "–"


def number(value: float | None) -> str:
    """``100000`` -> ``"100,000"``; ``"–"`` for none, ``"∞"`` for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"


def entry_time(entry_id: str | None) -> str:
    """A stream id's time (its first part, in ms) as ISO."""
    head = (entry_id or "").split("-")[0]
    if not head.isdigit():
        return ""
    return datetime.fromtimestamp(int(head) / 1000, UTC).isoformat()


@functools.cache
def environment() -> jinja2.Environment:
    """The templates, autoescaped; undefined names are errors, not blanks."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agentlink.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago,
        clock=clock,
        short=short,
        mib=mib,
        number=number,
        duration=duration,
        entry_time=entry_time,
    )
    return env


def html(template: str, *, status_code: int = 200, **context: Any) -> Response[str]:
    """``template`` rendered with ``context``, as an uncached HTML answer."""
    body = environment().get_template(template).render(**context)
    return Response(body, status_code=status_code, media_type=HTML, headers=NO_STORE)
