"""The report's charts, drawn server-side: the leaders' bars and the monthly trend.

Text is set as HTML, shapes as inline SVG. WeasyPrint draws an SVG ``<text>`` element
about thirty times slower than a line of HTML text (each is laid out on its own at paint
time), so a chart with fifty labels would cost a tenth of a second per report; here the
labels are HTML positioned over (or beside) the shapes, and the SVG holds only rectangles
and lines. Every piece of text goes through ``esc``, because agent and agency names carry
``&`` and ``'`` ("O'Rourke & Vance"); figures are written by ``format``, like the tables',
so a bar's share and the table's share are the same text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from agentlink.reports.analytics import Standing
from agentlink.reports.format import percent

BAR_SPAN = 0.82  # the longest bar fills this much of its cell, leaving room for its figure


@dataclass(frozen=True, slots=True)
class Palette:
    """The colours a chart draws with (from the brand)."""

    bar: str
    highlight: str
    faint: str = "#c9d0d8"


def leaders_chart(
    standings: Sequence[Standing],
    palette: Palette,
    *,
    limit: int = 10,
    highlighted: frozenset[int] = frozenset(),
) -> str:
    """Bars of the ``limit`` leaders by sales, then any highlighted row ranked below them.

    An HTML table: the name (and agency) right-aligned, then a bar whose length is the
    number of properties sold, then that number and the share of the suburb's sales.
    """
    shown = list(standings[:limit])
    below = [row for row in standings[limit:] if row.rank in highlighted]
    top = max((row.figures.sales for row in shown), default=1) or 1
    rows = []
    for row in shown + below:
        if below and row is below[0]:
            rows.append('<tr class="gap"><td class="who">…</td><td></td></tr>')
        marked = row.rank in highlighted
        colour = palette.highlight if marked else palette.bar
        width = max(BAR_SPAN * 100 * row.figures.sales / top, 0.6)
        agency = f'<span class="sub">{esc(row.agency)}</span>' if row.agency else ""
        css_class = ' class="marked"' if marked else ""
        rows.append(
            f"<tr{css_class}>"
            f'<td class="who"><span class="name">{row.rank}. {esc(row.name)}</span>{agency}</td>'
            f'<td class="bar"><span class="fill" style="width: {width:.1f}%; '
            f'background: {colour}"></span><span class="figure">{row.figures.sales} · '
            f"{percent(row.share)}</span></td></tr>"
        )
    return f'<table class="bars">{"".join(rows)}</table>'


def esc(text: str) -> str:
    """``text`` safe inside HTML and SVG markup."""
    return html.escape(text, quote=True)
