"""An independent recount of a report's figures from raw CSV rows, for the tests.

Written from the definitions in the report's "About this report" section, with the csv,
statistics and decimal modules only and never with ``agentlink.reports``' own code, so a
mistake in the analytics is not repeated here. Every function returns the text the PDF
must show, so tests compare strings with the PDF's extracted text.
"""

from __future__ import annotations

import calendar
import csv
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

MINUS = "\u2212"


@dataclass(frozen=True)
class Row:
    """One CSV row, typed."""

    sold: date
    address: str
    suburb: str
    state: str
    postcode: str
    price: int
    kind: str
    beds: int
    dom: int
    agent: str
    agency: str


def read_rows(path: Path | str) -> list[Row]:
    """Every row of a CSV in the documented columns (prices as plain whole dollars)."""
    with Path(path).open(encoding="utf-8-sig", newline="") as file:
        return [_row(r) for r in csv.DictReader(file)]


def _row(r: dict[str, str]) -> Row:
    price = int(r["price"].replace("$", "").replace(",", ""))
    beds = int(r["bedrooms"] or 0)
    return Row(
        date.fromisoformat(r["sold_date"]),
        r["address"],
        r["suburb"],
        r["state"],
        r["postcode"],
        price,
        r["property_type"],
        beds,
        int(r["days_on_market"]),
        r["agent"],
        r["agency"],
    )


def months(day: date) -> int:
    """Months since year 0: consecutive months differ by one."""
    return day.year * 12 + day.month - 1


def month_name(index: int) -> str:
    return f"{calendar.month_name[index % 12 + 1]} {index // 12}"


@dataclass(frozen=True)
class Window:
    """A report's period and the one before it, as month indexes (inclusive)."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def holds(self, day: date) -> bool:
        return self.first <= months(day) <= self.last

    @property
    def previous(self) -> Window:
        return Window(self.first - self.length, self.first - 1)

    @property
    def label(self) -> str:
        if self.length == 1:
            return month_name(self.last)
        if self.first // 12 == self.last // 12:
            return f"{calendar.month_name[self.first % 12 + 1]} \u2013 {month_name(self.last)}"
        return f"{month_name(self.first)} \u2013 {month_name(self.last)}"


def window(rows: Sequence[Row], period_months: int = 12, end: date | None = None) -> Window:
    last = months(end or max(r.sold for r in rows))
    return Window(last - period_months + 1, last)


# -- how figures are written ---------------------------------------------------------------


def money(value: float) -> str:
    return f"${int(value):,}" if value == int(value) else f"${value:,.2f}"


def pct(part: Decimal | int, whole: Decimal | int) -> Decimal:
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def share(part: int, whole: int) -> str:
    return f"{pct(part, whole)}%"


def signed(value: Decimal | float | int, suffix: str = "") -> str:
    if value == 0:
        return f"{abs(value)}{suffix}"
    text = f"{abs(value):,}" if not isinstance(value, float) else _plain(abs(value))
    return f"{'+' if value > 0 else MINUS}{text}{suffix}"


def change(current: float, previous: float) -> str:
    return signed(pct(Decimal(str(current)) - Decimal(str(previous)), Decimal(str(previous))), "%")


def days(value: float) -> str:
    return _plain(value)


def _plain(value: float) -> str:
    return f"{int(value)}" if value == int(value) else f"{value:.1f}"


# -- the figures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """A set of sales summarised as the report prints it."""

    n: int
    value: int
    median: float
    dom: float

    @classmethod
    def of(cls, rows: Sequence[Row]) -> Group:
        return cls(
            len(rows),
            sum(r.price for r in rows),
            statistics.median(r.price for r in rows),
            statistics.median(r.dom for r in rows),
        )


@dataclass(frozen=True)
class Ranked:
    rank: int
    name: str
    agency: str | None
    agents: int
    now: Group
    before_n: int


def rank(
    now: Sequence[Row], before: Sequence[Row], key: Callable[[Row], tuple[str, str]]
) -> list[Ranked]:
    """Rows ranked by sales, then sales value, then name (A-Z)."""
    groups: defaultdict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in now:
        groups[key(row)].append(row)
    earlier: defaultdict[tuple[str, str], int] = defaultdict(int)
    for row in before:
        earlier[key(row)] += 1
    order = sorted(
        groups,
        key=lambda k: (
            -len(groups[k]),
            -sum(r.price for r in groups[k]),
            k[0].casefold(),
            k[0],
            k[1],
        ),
    )
    return [
        Ranked(
            i,
            k[0],
            k[1] or None,
            len({r.agent for r in groups[k]}),
            Group.of(groups[k]),
            earlier[k],
        )
        for i, k in enumerate(order, start=1)
    ]


def by_agent(row: Row) -> tuple[str, str]:
    return (row.agent, row.agency)


def by_agency(row: Row) -> tuple[str, str]:
    return (row.agency, "")


def ranking_numbers(r: Ranked, whole: int, before_total: int) -> str:
    """The numeric cells of a ranking row, from properties sold to median days."""
    moved = signed(r.now.n - r.before_n) if before_total else "\u2013"
    return (
        f"{r.now.n} {moved} {share(r.now.n, whole)} {money(r.now.median)} "
        f"{money(r.now.value)} {days(r.now.dom)}"
    )


def in_band(rows: Iterable[Row], low: int | None, high: int | None) -> int:
    return sum(
        1 for r in rows if (low is None or r.price >= low) and (high is None or r.price < high)
    )


def amount(text: str) -> int:
    """``$1.25m`` -> 1250000, ``$450k`` -> 450000."""
    number = Decimal(text.strip("$mk"))
    return int(number * (1_000_000 if text.endswith("m") else 1_000))
