"""How figures are written in a report: money, shares, changes, dates and counted nouns.

One function per kind of figure, used by the templates (as Jinja filters) and by the
charts alike, so the same number is written the same way everywhere. Money is exact:
whole dollars, with cents only when a median falls between two sales (``$1,237,500.50``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from agentlink.reports.figures import percent as percent_value

MINUS = "\u2212"
NONE = "\u2013"  # an en dash stands for "no figure"


def money(value: float | None) -> str:
    """``$2,450,000``; ``$1,237,500.50`` when the value has cents; an en dash for None."""
    if value is None:
        return NONE
    if value == int(value):
        return f"${int(value):,}"
    return f"${value:,.2f}"


def money_short(value: float) -> str:
    """``$950k``, ``$1.25m``: for round amounts such as price-band edges."""
    if value >= 1_000_000:
        return f"${_trimmed(Decimal(str(value)) / 1_000_000)}m"
    if value >= 1_000:
        return f"${_trimmed(Decimal(str(value)) / 1_000)}k"
    return money(value)


def _trimmed(value: Decimal) -> str:
    """``1.25``, ``2``, ``450``: a decimal without trailing zeros or exponent."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(fraction: Fraction) -> str:
    """``24.3%``: a share, rounded half up to one decimal (the only precision used)."""
    return f"{percent_value(fraction)}%"


def signed(value: Decimal | float, suffix: str = "") -> str:
    """``+4.1%``, ``−3 days``: a change with its sign (none for zero)."""
    # The magnitude of zero too: rounding can leave a "-0.0".
    magnitude = value.copy_abs() if isinstance(value, Decimal) else abs(value)
    if value == 0:
        return f"{_number(magnitude)}{suffix}"
    return f"{'+' if value > 0 else MINUS}{_number(magnitude)}{suffix}"


def change_percent(fraction: Fraction | None) -> str:
    """A relative change: ``+4.1%``; an en dash when there is nothing to compare."""
    return NONE if fraction is None else signed(percent_value(fraction), "%")


def change_points(current: Fraction, previous: Fraction | None) -> str:
    """A change of share: ``+1.2 pts``; an en dash without a previous share."""
    if previous is None:
        return NONE
    return signed(percent_value(current - previous), " pts")


def change_days(current: float | None, previous: float | None) -> str:
    """A change in days: ``+3 days``, ``−1.5 days``, ``no change``."""
    if current is None or previous is None:
        return NONE
    difference = current - previous
    if difference == 0:
        return "no change"
    return signed(difference, " day" if abs(difference) == 1 else " days")


def days(value: float | None) -> str:
    """A median number of days: ``24``, or ``23.5`` between two middle sales."""
    return NONE if value is None else _number(value)


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 agent``, ``26 agents``: a number with its noun in the right form."""
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"


def noun(number: int, singular: str, plural: str | None = None) -> str:
    """The noun alone, in the form ``number`` needs."""
    return singular if number == 1 else plural or singular + "s"


def long_date(day: date) -> str:
    """``1 November 2025``: the date style of the reports and their messages."""
    return f"{day.day} {day:%B %Y}"


def short_date(day: date) -> str:
    """``1 Nov 2025``: dates in tables."""
    return f"{day.day} {day:%b %Y}"


def _number(value: Decimal | float) -> str:
    if isinstance(value, Decimal):
        return f"{value:,}"
    return f"{int(value):,}" if value == int(value) else f"{value:,.1f}"
