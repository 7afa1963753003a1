"""Server-side SVG charts for the reports: the leaders' bars (the trend is in ``trend_chart``).

WeasyPrint draws inline SVG natively, so a chart is a string of markup: no plotting
library, no browser, no image files, and the text stays sharp and selectable in the PDF.
Every piece of text goes through ``esc`` because agent and agency names carry ``&`` and
``'`` ("O'Rourke & Vance"). Figures are written by ``format``, like the tables', so a bar's
share and the table's share are the same text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from agentlink.reports.analytics import Standing
from agentlink.reports.format import percent

WIDTH = 680  # user units; the SVG scales to the width of the A4 text column
LABEL_W = 250
VALUE_W = 96
TOP = 22
FONT = "Inter, sans-serif"
INK = "#1b2430"
MUTED = "#6b7580"
GRID = "#e4e7eb"


@dataclass(frozen=True, slots=True)
class Palette:
    """The colours a chart draws with (from the brand)."""

    bar: str
    highlight: str
    faint: str = "#c9d0d8"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: a label (and a smaller second line), a length and the text at its end."""

    label: str
    value: float
    caption: str
    sublabel: str | None = None
    highlighted: bool = False
    gap_before: bool = False  # drawn after a break: a highlighted row outside the leaders


def leaders_chart(
    standings: Sequence[Standing],
    palette: Palette,
    *,
    limit: int = 10,
    highlighted: frozenset[int] = frozenset(),
) -> str:
    """Bars of the ``limit`` leaders by sales, plus highlighted rows ranked below them."""
    shown = list(standings[:limit])
    below = [row for row in standings[limit:] if row.rank in highlighted]
    bars = [
        Bar(
            label=row.name,
            sublabel=row.agency,
            value=row.figures.sales,
            caption=f"{row.figures.sales} · {percent(row.share)}",
            highlighted=row.rank in highlighted,
            gap_before=row is below[0] if below else False,
        )
        for row in shown + below
    ]
    ranks = [row.rank for row in shown + below]
    return bar_chart(bars, palette, axis_label="Properties sold in the period", ranks=ranks)


def bar_chart(
    bars: Sequence[Bar], palette: Palette, *, axis_label: str, ranks: Sequence[int] = ()
) -> str:
    """Horizontal bars, longest meaning most, as a standalone ``<svg>`` element."""
    row_h = 30 if any(bar.sublabel for bar in bars) else 22
    gap_h = 14
    height = TOP + row_h * len(bars) + gap_h * sum(bar.gap_before for bar in bars) + 26
    plot_w = WIDTH - LABEL_W - VALUE_W
    top_value = max((bar.value for bar in bars), default=0)
    step = nice_step(top_value, 5)
    scale_max = step * max(1, math.ceil(top_value / step))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" font-family="{FONT}">',
        f"<title>{esc(axis_label)}</title>",
    ]
    bottom = height - 26
    for tick in range(0, scale_max + 1, step):
        x = LABEL_W + plot_w * tick / scale_max
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom}" '
            f'stroke="{GRID}" stroke-width="0.8"/>'
            f'<text x="{x:.1f}" y="{TOP - 9}" font-size="9" fill="{MUTED}" '
            f'text-anchor="middle">{tick}</text>'
        )
    y = float(TOP)
    for index, bar in enumerate(bars):
        if bar.gap_before:
            parts.append(
                f'<text x="{LABEL_W - 10}" y="{y + 10:.1f}" font-size="10" fill="{MUTED}" '
                f'text-anchor="end">…</text>'
            )
            y += gap_h
        length = max(plot_w * bar.value / scale_max, 1.5)
        colour = palette.highlight if bar.highlighted else palette.bar
        label_y = y + row_h / 2 + (-1.5 if bar.sublabel else 3.5)
        rank = f"{ranks[index]}. " if ranks else ""
        weight = "600" if bar.highlighted else "500"
        parts.append(
            f'<text x="{LABEL_W - 10}" y="{label_y:.1f}" font-size="10.5" fill="{INK}" '
            f'text-anchor="end" font-weight="{weight}">{esc(rank + fit(bar.label, 34))}</text>'
        )
        if bar.sublabel:
            parts.append(
                f'<text x="{LABEL_W - 10}" y="{label_y + 11.5:.1f}" font-size="8.5" '
                f'fill="{MUTED}" text-anchor="end">{esc(fit(bar.sublabel, 42))}</text>'
            )
        parts.append(
            f'<rect x="{LABEL_W}" y="{y + 5:.1f}" width="{length:.1f}" height="{row_h - 10}" '
            f'fill="{colour}"/>'
            f'<text x="{LABEL_W + length + 6:.1f}" y="{y + row_h / 2 + 3.5:.1f}" '
            f'font-size="9.5" fill="{INK}" font-weight="{weight}">{esc(bar.caption)}</text>'
        )
        y += row_h
    parts.append(
        f'<text x="{LABEL_W + plot_w / 2:.1f}" y="{height - 6}" font-size="9" '
        f'fill="{MUTED}" text-anchor="middle">{esc(axis_label)}</text></svg>'
    )
    return "".join(parts)


def nice_step(top_value: float, lines: int) -> int:
    """A whole 1-2-5 step giving about ``lines`` grid lines up to ``top_value``."""
    raw = top_value / lines
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    return int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters: SVG text does not wrap."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def esc(text: str) -> str:
    """``text`` safe inside SVG markup."""
    return html.escape(text, quote=True)
