"""The shape of a suburb's market: property types, price bands, months, latest sales.

Price bands are chosen per suburb, because a $1m band tells nothing in Manly and
everything in Whyalla: the sixths of the period's prices are rounded to the nearest step
of a ladder of round amounts, giving up to six bands that read naturally ("$1.25m to
$1.75m"), none of them empty. A band includes its lower bound and excludes its upper one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from agentlink.reports.figures import Figures, share
from agentlink.reports.periods import Month
from agentlink.reports.sales import PropertyType, Sale

RECENT_SALES = 10
MIN_SALES_FOR_BANDS = 5
MAX_BEDROOM_ROW = 5  # the last row of the bedrooms table is "5 or more"
_K = 1_000
_M = 1_000_000
PRICE_LADDER = (
    50 * _K, 100 * _K, 150 * _K, 200 * _K, 250 * _K, 300 * _K, 350 * _K, 400 * _K, 450 * _K,
    500 * _K, 600 * _K, 700 * _K, 800 * _K, 900 * _K, 1 * _M, 1_250 * _K, 1_500 * _K,
    1_750 * _K, 2 * _M, 2_500 * _K, 3 * _M, 3_500 * _K, 4 * _M, 5 * _M, 6 * _M, 7_500 * _K,
    10 * _M, 12_500 * _K, 15 * _M, 20 * _M, 25 * _M, 30 * _M, 40 * _M, 50 * _M,
)  # fmt: skip
"""Round amounts a band may start or end at, in dollars."""


@dataclass(frozen=True, slots=True)
class TypeSplit:
    """Sales of one property type in the period."""

    property_type: PropertyType
    figures: Figures
    share: Fraction


@dataclass(frozen=True, slots=True)
class BedroomSplit:
    """Sales of homes with ``bedrooms`` bedrooms (``bedrooms`` or more for the last row)."""

    bedrooms: int
    or_more: bool
    figures: Figures


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Sales priced from ``low`` (inclusive) to ``high`` (exclusive); None is open-ended."""

    low: int | None
    high: int | None
    sales: int
    share: Fraction


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One month of the trend chart."""

    month: Month
    figures: Figures


def by_type(sales: Sequence[Sale]) -> tuple[TypeSplit, ...]:
    """The period's sales per property type (types without sales are left out)."""
    splits = []
    for kind in PropertyType:
        of_kind = [sale for sale in sales if sale.property_type is kind]
        if of_kind:
            splits.append(TypeSplit(kind, Figures.of(of_kind), share(len(of_kind), len(sales))))
    return tuple(splits)


def by_bedrooms(sales: Sequence[Sale]) -> tuple[BedroomSplit, ...]:
    """The period's sales of homes by bedrooms: 1, 2, 3, 4, then 5 or more (land and
    studios, with no bedroom recorded, are left out); rows without sales are left out."""
    rows = []
    for beds in range(1, MAX_BEDROOM_ROW + 1):
        last = beds == MAX_BEDROOM_ROW
        chosen = [s for s in sales if s.bedrooms == beds or (last and s.bedrooms > beds)]
        if chosen:
            rows.append(BedroomSplit(beds, last, Figures.of(chosen)))
    return tuple(rows)


def band_edges(prices: Sequence[int]) -> tuple[int, ...]:
    """The inner edges of the price bands of ``prices`` (empty for too few sales, or when
    every price falls within one step of the ladder)."""
    if len(prices) < MIN_SALES_FOR_BANDS:
        return ()
    ordered = sorted(prices)
    candidates = set()
    for sixth in range(1, 6):
        cut = ordered[(len(ordered) * sixth) // 6]
        candidates.add(min(PRICE_LADDER, key=lambda step: (abs(step - cut), step)))
    # Rounding to the ladder can put an edge below every price, above every price, or two
    # edges with no price between them: keep an edge only if sales lie on both sides of it
    # (below it, from the last edge kept), so that no band is empty.
    edges: list[int] = []
    for edge in sorted(candidates):
        floor = edges[-1] if edges else 0
        if ordered[-1] >= edge and any(floor <= price < edge for price in ordered):
            edges.append(edge)
    return tuple(edges)


def price_bands(sales: Sequence[Sale]) -> tuple[PriceBand, ...]:
    """The period's sales per price band; empty when there are too few sales to band."""
    if len(sales) < MIN_SALES_FOR_BANDS:
        return ()
    prices = [sale.price for sale in sales]
    edges = band_edges(prices)
    if not edges:
        # One band holds every sale: name it by the ladder steps around the prices.
        low = max((step for step in PRICE_LADDER if step <= min(prices)), default=None)
        high = min((step for step in PRICE_LADDER if step > max(prices)), default=None)
        return (PriceBand(low, high, len(sales), share(len(sales), len(sales))),)
    bounds: list[tuple[int | None, int | None]] = [(None, edges[0])]
    bounds += list(itertools.pairwise(edges))
    bounds.append((edges[-1], None))
    bands = []
    for low, high in bounds:
        count = sum(
            1
            for price in prices
            if (low is None or price >= low) and (high is None or price < high)
        )
        bands.append(PriceBand(low, high, count, share(count, len(sales))))
    return tuple(bands)


def monthly(sales: Iterable[Sale], months: Sequence[Month]) -> tuple[MonthFigures, ...]:
    """Sales count and median price of each of ``months`` (oldest first)."""
    per_month: dict[Month, list[Sale]] = {month: [] for month in months}
    for sale in sales:
        bucket = per_month.get(Month.of(sale.sold_date))
        if bucket is not None:
            bucket.append(sale)
    return tuple(MonthFigures(month, Figures.of(per_month[month])) for month in months)


def recent_sales(sales: Sequence[Sale]) -> tuple[Sale, ...]:
    """The ``RECENT_SALES`` latest sales, newest first (same day: by address, then agent)."""
    newest = sorted(sales, key=lambda s: (-s.sold_date.toordinal(), s.address, s.agent))
    return tuple(newest[:RECENT_SALES])
