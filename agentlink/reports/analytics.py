"""The figures behind a report: who sold how much in a suburb over a period.

Kept apart from rendering so the numbers can be tested (and reused, e.g. by a JSON API)
without laying out a PDF. Everything here is a pure function of the spec and the sales,
except ``analyse``, which asks the ``SalesSource`` for them.
"""

from __future__ import annotations

import calendar
import difflib
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from agentlink.errors import NoSalesDataError
from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.reports.sources import PropertyType, Sale, SalesSource, SuburbDirectory

_GroupKey = Callable[[Sale], tuple[str, str | None]]


@dataclass(frozen=True, slots=True)
class Period:
    """The months a report covers: ``start`` is exclusive, ``end`` inclusive."""

    start: date
    end: date
    months: int

    @property
    def first_day(self) -> date:
        """The first day whose sales count."""
        return self.start + timedelta(days=1)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start < day <= self.end


@dataclass(frozen=True, slots=True)
class Standing:
    """One ranked row: an agent (with their agency) or an agency."""

    rank: int
    name: str
    agency: str | None  # the agent's agency; None on an agency row
    agents: int  # agents with sales in the period (1 on an agent row)
    sales: int
    total_price: int
    median_price: float
    median_days_on_market: float
    share: float  # of the suburb's sales in the period, 0..1


@dataclass(frozen=True, slots=True)
class TypeSplit:
    """Sales of one property type in the period."""

    property_type: PropertyType
    sales: int
    share: float
    median_price: float


@dataclass(frozen=True, slots=True)
class SuburbSummary:
    """The suburb's market in the period, all agents together."""

    suburb: str  # display spelling, from the data
    state: AuState
    postcode: str
    period: Period
    sales: int
    total_price: int
    median_price: float
    median_days_on_market: float
    agents: int
    agencies: int
    by_type: tuple[TypeSplit, ...]


@dataclass(frozen=True, slots=True)
class MarketAnalysis:
    """Everything a report shows: the summary and both rankings."""

    summary: SuburbSummary
    agents: tuple[Standing, ...]
    agencies: tuple[Standing, ...]

    def standings(self, kind: Kind) -> tuple[Standing, ...]:
        """The ranking a report of ``kind`` shows."""
        return self.agents if kind == Kind.AGENTS else self.agencies


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier, clamped to the month's end."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def period_ending(end: date, months: int) -> Period:
    """The ``months`` calendar months up to and including ``end``."""
    return Period(start=months_before(end, months), end=end, months=months)


def long_date(day: date) -> str:
    """``1 November 2025``: the date style of the reports and their messages."""
    return f"{day.day} {day:%B %Y}"


def analyse(spec: ReportSpec, source: SalesSource) -> MarketAnalysis:
    """Fetch the suburb's sales from ``source`` and analyse them for ``spec``.

    Raises ``NoSalesDataError`` when the suburb has no sales at all (suggesting close
    spellings when the source can list its suburbs) or none in the period.
    """
    if spec.period_end is not None:
        period = period_ending(spec.period_end, spec.period_months)
        found = source.sales(spec.suburb, spec.state, period.first_day, period.end)
        if found:
            return analyse_sales(spec, found)
    # Without an end date the period ends at the suburb's latest sale, so the sample
    # data never goes stale; with one, the full history tells "unknown" from "quiet".
    history = source.sales(spec.suburb, spec.state)
    if not history:
        raise NoSalesDataError(_unknown_suburb_message(spec, source))
    return analyse_sales(spec, history)


def analyse_sales(spec: ReportSpec, sales: Sequence[Sale]) -> MarketAnalysis:
    """Analyse the suburb's ``sales`` (any dates; those outside the period are ignored)."""
    if not sales:
        raise NoSalesDataError(f"no sales recorded for {spec.suburb.strip()}, {spec.state}")
    latest = max(sales, key=lambda sale: sale.sold_date)
    period = period_ending(spec.period_end or latest.sold_date, spec.period_months)
    chosen = [sale for sale in sales if sale.sold_date in period]
    if not chosen:
        first = min(sale.sold_date for sale in sales)
        raise NoSalesDataError(
            f"no sales recorded for {latest.suburb}, {spec.state} in the {period.months} "
            f"months from {long_date(period.first_day)} to {long_date(period.end)}; "
            f"sales on record run from {long_date(first)} to {long_date(latest.sold_date)}"
        )
    agents = _rank(chosen, lambda s: (s.agent, s.agency))
    agencies = _rank(chosen, lambda s: (s.agency, None))
    by_type = []
    for kind in PropertyType:
        of_kind = [sale for sale in chosen if sale.property_type is kind]
        if of_kind:
            share = len(of_kind) / len(chosen)
            by_type.append(TypeSplit(kind, len(of_kind), share, _median_price(of_kind)))
    summary = SuburbSummary(
        suburb=latest.suburb,
        state=latest.state,
        postcode=latest.postcode,
        period=period,
        sales=len(chosen),
        total_price=sum(sale.price for sale in chosen),
        median_price=_median_price(chosen),
        median_days_on_market=_median_days(chosen),
        agents=len(agents),
        agencies=len(agencies),
        by_type=tuple(by_type),
    )
    return MarketAnalysis(summary=summary, agents=agents, agencies=agencies)


def _rank(sales: Sequence[Sale], key: _GroupKey) -> tuple[Standing, ...]:
    groups: defaultdict[tuple[str, str | None], list[Sale]] = defaultdict(list)
    for sale in sales:
        groups[key(sale)].append(sale)
    rows = sorted(
        groups.items(),
        key=lambda item: (
            -len(item[1]),
            -sum(sale.price for sale in item[1]),
            item[0][0].casefold(),
            item[0][0],
            item[0][1] or "",
        ),
    )
    return tuple(
        Standing(
            rank=rank,
            name=name,
            agency=agency,
            agents=len({sale.agent for sale in group}),
            sales=len(group),
            total_price=sum(sale.price for sale in group),
            median_price=_median_price(group),
            median_days_on_market=_median_days(group),
            share=len(group) / len(sales),
        )
        for rank, ((name, agency), group) in enumerate(rows, start=1)
    )


def _median_price(sales: Iterable[Sale]) -> float:
    return float(statistics.median(sale.price for sale in sales))


def _median_days(sales: Iterable[Sale]) -> float:
    return float(statistics.median(sale.days_on_market for sale in sales))


def _unknown_suburb_message(spec: ReportSpec, source: SalesSource) -> str:
    wanted = spec.suburb.strip()
    message = f"no sales recorded for {wanted}, {spec.state}"
    if not isinstance(source, SuburbDirectory):
        return message
    known = {name.casefold(): name for name in source.suburbs(spec.state)}
    close = difflib.get_close_matches(wanted.casefold(), list(known), n=3, cutoff=0.6)
    suggestions = [f"{known[name]}, {spec.state}" for name in close]
    suggestions += [
        f"{name}, {state}"
        for state in AuState
        if state != spec.state
        for name in source.suburbs(state)
        if name.casefold() == wanted.casefold()
    ]
    if suggestions:
        message += f"; did you mean {' or '.join(suggestions)}?"
    return message
