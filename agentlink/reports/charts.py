"""Server-side SVG charts for the reports.

WeasyPrint draws inline SVG natively, so a chart is a string of markup: no plotting
library, no browser, no image files, and the text stays sharp and selectable in the PDF.
Every piece of text goes through ``_esc`` because agent and agency names carry ``&`` and
``'`` ("O'Rourke & Vance").
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from agentlink.reports.analytics import Standing

WIDTH = 680  # user units; the SVG scales to the width of the A4 text column
LABEL_W = 250
VALUE_W = 90
TOP = 24
FONT = "DejaVu Sans, sans-serif"
INK = "#1d2b3a"
MUTED = "#6b7785"
GRID = "#e3e7ec"
BAR = "#2f5d7c"
LEADER = "#c0873f"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: a label (and a smaller second line), a length and the text at its end."""

    label: str
    value: float
    caption: str
    sublabel: str | None = None


def leaders_chart(standings: Sequence[Standing], *, limit: int = 10) -> str:
    """A horizontal bar chart of the ``limit`` leaders by number of sales."""
    bars = [
        Bar(
            label=row.name,
            sublabel=row.agency,
            value=row.sales,
            caption=f"{row.sales} · {row.share:.0%}",
        )
        for row in standings[:limit]
    ]
    return bar_chart(bars, axis_label="Sales in the period")


def bar_chart(bars: Sequence[Bar], *, axis_label: str) -> str:
    """Horizontal bars, longest meaning most, as a standalone ``<svg>`` element."""
    row_h = 34 if any(bar.sublabel for bar in bars) else 24
    height = TOP + row_h * len(bars) + 28
    plot_w = WIDTH - LABEL_W - VALUE_W
    top_value = max((bar.value for bar in bars), default=0)
    step = _nice_step(top_value)
    scale_max = step * max(1, math.ceil(top_value / step))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" font-family="{FONT}">',
        f"<title>{_esc(axis_label)}</title>",
    ]
    bottom = TOP + row_h * len(bars)
    for tick in range(0, scale_max + 1, step):
        x = LABEL_W + plot_w * tick / scale_max
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{bottom}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{TOP - 12}" font-size="10" fill="{MUTED}" '
            f'text-anchor="middle">{tick}</text>'
        )
    for index, bar in enumerate(bars):
        y = TOP + row_h * index
        length = plot_w * bar.value / scale_max
        colour = LEADER if index == 0 else BAR
        label_y = y + row_h / 2 + (-1.5 if bar.sublabel else 4)
        parts.append(
            f'<text x="{LABEL_W - 10}" y="{label_y:.1f}" font-size="12" fill="{INK}" '
            f'text-anchor="end" font-weight="bold">{_esc(_fit(bar.label, 34))}</text>'
        )
        if bar.sublabel:
            parts.append(
                f'<text x="{LABEL_W - 10}" y="{label_y + 12.5:.1f}" font-size="10" '
                f'fill="{MUTED}" text-anchor="end">{_esc(_fit(bar.sublabel, 40))}</text>'
            )
        parts.append(
            f'<rect x="{LABEL_W}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" '
            f'rx="2" fill="{colour}"/>'
            f'<text x="{LABEL_W + length + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" '
            f'font-size="11" fill="{INK}">{_esc(bar.caption)}</text>'
        )
    parts.append(
        f'<text x="{LABEL_W + plot_w / 2:.1f}" y="{bottom + 22}" font-size="10" '
        f'fill="{MUTED}" text-anchor="middle">{_esc(axis_label)}</text></svg>'
    )
    return "".join(parts)


def _nice_step(top_value: float) -> int:
    """A whole 1-2-5 step giving about five grid lines up to ``top_value``."""
    raw = top_value / 5
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    return int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))


def _fit(text: str, limit: int) -> str:
    # SVG text does not wrap; cut long names rather than run into the bars.
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
