"""The trend chart: properties sold per month (columns) and their median price (a line).

Two years of months, so a reader sees the report period against the year before it: the
period's columns are in the brand colour, the earlier ones pale. The median price line
skips months without sales rather than drawing through them, and its axis does not start
at zero (prices never approach it), which its labels make plain.

The shapes are one SVG; the labels are HTML spans placed over it in percentages of its
size (see ``charts`` for why), inside a ``position: relative`` box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agentlink.reports.charts import Palette, esc
from agentlink.reports.format import money_short
from agentlink.reports.market import MonthFigures
from agentlink.reports.periods import Period

WIDTH = 680
HEIGHT = 230
LEFT = 30  # the properties-sold axis labels
RIGHT = 52  # the price axis labels
TOP = 8
BOTTOM = 30  # month and year labels
GRID = "#e4e7eb"
AXIS = "#1b2430"


def trend_chart(months: Sequence[MonthFigures], period: Period, palette: Palette) -> str:
    """Columns and line for ``months`` (oldest first), as HTML with an inline SVG."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot = plot_w / max(len(months), 1)
    top_sales = max((m.figures.sales for m in months), default=0)
    step = _sales_step(top_sales)
    sales_max = step * max(1, math.ceil(top_sales / step))
    prices = [m.figures.median_price for m in months if m.figures.median_price is not None]
    low, high, price_step = _price_scale(prices)
    shapes: list[str] = []
    labels: list[str] = []
    for tick in range(0, sales_max + 1, step):
        y = base - plot_h * tick / sales_max
        if tick:
            shapes.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                f'stroke="{GRID}" stroke-width="0.8"/>'
            )
        labels.append(_label(0, LEFT - 6, y, str(tick), align="right"))
    count = round((high - low) / price_step)
    for i in range(count + 1):
        price = low + price_step * i
        y = base - plot_h * (price - low) / (high - low)
        labels.append(_label(WIDTH - RIGHT + 6, RIGHT - 6, y, money_short(price), align="left"))
    points: list[tuple[float, float] | None] = []
    for index, month in enumerate(months):
        x = LEFT + slot * index
        figures = month.figures
        if figures.sales:
            height = plot_h * figures.sales / sales_max
            in_period = period.first <= month.month <= period.last
            colour = palette.bar if in_period else palette.faint
            shapes.append(
                f'<rect x="{x + slot * 0.18:.1f}" y="{base - height:.1f}" '
                f'width="{slot * 0.64:.1f}" height="{height:.1f}" fill="{colour}"/>'
            )
        if figures.median_price is None:
            points.append(None)
        else:
            y = base - plot_h * (figures.median_price - low) / (high - low)
            points.append((x + slot / 2, y))
        labels.append(_label(x, slot, base + 9, month.month.short, align="center"))
        if month.month.month == 1 or index == 0:
            labels.append(
                _label(x, 40, base + 20, str(month.month.year), align="left", kind="year")
            )
    shapes.append(
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" '
        f'stroke="{AXIS}" stroke-width="0.8"/>'
    )
    shapes.extend(_line(points, palette.highlight))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img">'
        f"<title>Properties sold and median price per month</title>{''.join(shapes)}</svg>"
    )
    return f'{_legend(palette, period)}<div class="plot">{svg}{"".join(labels)}</div>'


def _label(x: float, width: float, y: float, text: str, *, align: str, kind: str = "") -> str:
    """A label ``width`` units wide from ``x``, its middle at height ``y``."""
    left = 100 * x / WIDTH
    span = 100 * width / WIDTH
    top = 100 * (y - 5) / HEIGHT  # a label is about 10 units high
    return (
        f'<span class="tick {kind}" style="left: {left:.2f}%; width: {span:.2f}%; '
        f'top: {top:.2f}%; text-align: {align}">{esc(text)}</span>'
    )


def _sales_step(top: int) -> int:
    """A 1-2-5 step giving three to five grid lines up to ``top``."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if top / step <= 5:
            return step
    return int(10 ** math.ceil(math.log10(max(top, 1) / 5)))


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
    return (
        '<p class="legend">'
        f'<span class="key" style="background: {palette.bar}"></span>'
        f"Properties sold, {esc(period.label)}"
        f'<span class="key" style="background: {palette.faint}"></span>'
        "Properties sold, earlier months"
        f'<span class="key line" style="border-color: {palette.highlight}"></span>'
        "Median price (right-hand scale)</p>"
    )
