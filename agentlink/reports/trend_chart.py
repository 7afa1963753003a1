"""The trend chart: properties sold per month (columns) and their median price (a line).

Two years of months, so a reader sees the report period against the year before it: the
period's columns are in the brand colour, the earlier ones pale. The median price line
skips months without sales rather than drawing through them, and its axis does not start
at zero (prices never approach it), which the axis labels make plain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agentlink.reports.charts import FONT, GRID, INK, MUTED, Palette, esc, nice_step
from agentlink.reports.format import money_short
from agentlink.reports.market import MonthFigures
from agentlink.reports.periods import Period

WIDTH = 680
HEIGHT = 232
LEFT = 34  # the sales axis
RIGHT = 54  # the price axis
TOP = 34  # room for the legend
BOTTOM = 34  # month and year labels


def trend_chart(months: Sequence[MonthFigures], period: Period, palette: Palette) -> str:
    """Columns and line for ``months`` (oldest first), as a standalone ``<svg>``."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot = plot_w / max(len(months), 1)
    top_sales = max((m.figures.sales for m in months), default=0)
    step = nice_step(top_sales, 4)
    sales_max = step * max(1, math.ceil(top_sales / step))
    prices = [m.figures.median_price for m in months if m.figures.median_price is not None]
    low, high, price_step = _price_scale(prices)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" font-family="{FONT}">',
        "<title>Properties sold and median price per month</title>",
    ]
    for tick in range(0, sales_max + 1, step):
        y = base - plot_h * tick / sales_max
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="0.8"/>'
            f'<text x="{LEFT - 6}" y="{y + 3:.1f}" font-size="8.5" fill="{MUTED}" '
            f'text-anchor="end">{tick}</text>'
        )
    price = low
    while price <= high + price_step / 1000:
        y = base - plot_h * (price - low) / (high - low)
        parts.append(
            f'<text x="{WIDTH - RIGHT + 6}" y="{y + 3:.1f}" font-size="8.5" fill="{MUTED}">'
            f"{esc(money_short(price))}</text>"
        )
        price += price_step
    points: list[tuple[float, float] | None] = []
    for index, month in enumerate(months):
        x = LEFT + slot * index
        figures = month.figures
        in_period = period.first <= month.month <= period.last
        if figures.sales:
            height = plot_h * figures.sales / sales_max
            colour = palette.bar if in_period else palette.faint
            parts.append(
                f'<rect x="{x + slot * 0.2:.1f}" y="{base - height:.1f}" '
                f'width="{slot * 0.6:.1f}" height="{height:.1f}" fill="{colour}"/>'
            )
        if figures.median_price is None:
            points.append(None)
        else:
            y = base - plot_h * (figures.median_price - low) / (high - low)
            points.append((x + slot / 2, y))
        label_y = base + 12
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{label_y}" font-size="8" fill="{MUTED}" '
            f'text-anchor="middle">{month.month.short}</text>'
        )
        if month.month.month == 1 or index == 0:
            parts.append(
                f'<text x="{x + 2:.1f}" y="{label_y + 12}" font-size="8.5" fill="{INK}" '
                f'font-weight="600">{month.month.year}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" '
        f'stroke="{INK}" stroke-width="0.8"/>'
    )
    parts.extend(_line(points, palette.highlight))
    parts.append(_legend(palette, period))
    parts.append("</svg>")
    return "".join(parts)


def _price_scale(prices: Sequence[float]) -> tuple[float, float, float]:
    """Axis bounds and step for the median prices: about four round steps around them."""
    if not prices:
        return 0.0, 1_000_000.0, 250_000.0
    low, high = min(prices), max(prices)
    if high - low < high * 0.1:  # a flat line (or one point) gets some air around it
        low, high = low * 0.9, high * 1.1
    raw = (high - low) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _line(points: Sequence[tuple[float, float] | None], colour: str) -> list[str]:
    parts = []
    run: list[tuple[float, float]] = []
    for point in [*points, None]:
        if point is not None:
            run.append(point)
            continue
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8" '
                f'stroke-linejoin="round"/>'
            )
        run = []
    parts.extend(
        f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="2.4" fill="#ffffff" stroke="{colour}" '
        f'stroke-width="1.4"/>'
        for p in points
        if p is not None
    )
    return parts


def _legend(palette: Palette, period: Period) -> str:
    y = 12
    items = [
        (f'<rect x="{LEFT}" y="{y - 7}" width="9" height="9" fill="{palette.bar}"/>', LEFT + 14,
         f"Properties sold, {period.label}"),
        (f'<rect x="{LEFT + 250}" y="{y - 7}" width="9" height="9" fill="{palette.faint}"/>',
         LEFT + 264, "Properties sold, earlier months"),
        (f'<line x1="{LEFT + 440}" y1="{y - 2.5}" x2="{LEFT + 458}" y2="{y - 2.5}" '
         f'stroke="{palette.highlight}" stroke-width="1.8"/>'
         f'<circle cx="{LEFT + 449}" cy="{y - 2.5}" r="2.4" fill="#ffffff" '
         f'stroke="{palette.highlight}" stroke-width="1.4"/>', LEFT + 464, "Median price"),
    ]  # fmt: skip
    return "".join(
        f'{mark}<text x="{x}" y="{y + 1}" font-size="8.5" fill="{INK}">{esc(text)}</text>'
        for mark, x, text in items
    )
