"""The figures of a report, each defined once, and how they are rounded.

Every number printed in a report comes from here: a group of sales (the suburb, an agent,
an agency, a price band, a month) is summarised by ``Figures``; shares and changes are
exact fractions until ``percent`` rounds them, half away from zero, to one decimal place,
so a chart label and a table cell showing the same share can never disagree. The
methodology section of the report states these definitions in words.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from agentlink.reports.sales import Sale

_ONE_DECIMAL = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Figures:
    """A group of sales summarised: what the KPIs, table rows and profiles show."""

    sales: int  # properties sold
    value: int  # sales value: the sold prices added up, whole dollars
    median_price: float | None  # None without sales; ends in .5 between two middle sales
    median_days: float | None  # median days on market

    @classmethod
    def of(cls, sales: Sequence[Sale]) -> Figures:
        """Summarise ``sales`` (any order)."""
        if not sales:
            return NO_SALES
        return cls(
            sales=len(sales),
            value=sum(sale.price for sale in sales),
            median_price=float(statistics.median(sale.price for sale in sales)),
            median_days=float(statistics.median(sale.days_on_market for sale in sales)),
        )


NO_SALES = Figures(sales=0, value=0, median_price=None, median_days=None)


def share(part: int, whole: int) -> Fraction:
    """``part`` of ``whole`` as an exact fraction (0 when ``whole`` is 0)."""
    return Fraction(part, whole) if whole else Fraction(0)


def percent(fraction: Fraction) -> Decimal:
    """A fraction in percent, rounded half away from zero to one decimal: 1/8 -> 12.5."""
    return (Decimal(fraction.numerator) * 100 / Decimal(fraction.denominator)).quantize(
        _ONE_DECIMAL, rounding=ROUND_HALF_UP
    )


def change(current: float | None, previous: float | None) -> Fraction | None:
    """Relative change from ``previous`` to ``current``; None when there is nothing to compare."""
    if current is None or previous is None or previous == 0:
        return None
    return (Fraction(current) - Fraction(previous)) / Fraction(previous)


def difference(current: float | None, previous: float | None) -> float | None:
    """``current - previous`` (days, shares); None when either is missing."""
    if current is None or previous is None:
        return None
    return current - previous


def sales_order(name: str, figures: Figures, tie: str = "") -> tuple[int, int, str, str, str]:
    """The ranking key: most sales, then highest sales value, then name (A-Z), then ``tie``."""
    return (-figures.sales, -figures.value, name.casefold(), name, tie)
