"""The analysis behind a report: the suburb's market in a period, and who sold it.

Kept apart from rendering so the numbers can be tested (and reused, e.g. by a JSON API)
without laying out a PDF. ``analyse`` asks the ``SalesSource`` for the suburb's sales;
everything else is a pure function of the spec and those sales. Figures are defined in
``figures``, the market's shape (price bands, months, property types) in ``market``, the
highlighted agent's or agency's profile in ``highlight``.

A sale is credited to the agent and agency named on it. An agent is a name at an agency:
an agent who moved agency during the period has one row per agency, each with the sales
made there, and every sale counts for the agency that made it.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from agentlink.errors import NoSalesDataError
from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.reports.figures import Figures, sales_order, share
from agentlink.reports.highlight import Profile, find_profile
from agentlink.reports.market import (
    BedroomSplit,
    MonthFigures,
    PriceBand,
    TypeSplit,
    by_bedrooms,
    by_type,
    monthly,
    price_bands,
    recent_sales,
)
from agentlink.reports.periods import Period, period_ending
from agentlink.reports.sales import Sale, SalesSource, SuburbDirectory

TREND_MONTHS = 24


@dataclass(frozen=True, slots=True)
class Standing:
    """One ranked row: an agent (at an agency) or an agency."""

    rank: int
    name: str
    agency: str | None  # the agent's agency; None on an agency row
    agents: int  # agents with sales in the period (1 on an agent row)
    figures: Figures
    share: Fraction  # of the suburb's sales in the period
    previous: Figures  # the same agent or agency in the previous period
    previous_share: Fraction | None  # None when the suburb had no sales then


@dataclass(frozen=True, slots=True)
class MarketAnalysis:
    """Everything a report shows."""

    suburb: str  # display spelling, from the data
    state: AuState
    postcode: str
    period: Period
    latest_sale: date  # the latest sale in the period
    current: Figures
    previous: Figures  # the previous period of the same length
    agents_now: int
    agencies_now: int
    agents: tuple[Standing, ...]
    agencies: tuple[Standing, ...]
    types: tuple[TypeSplit, ...]
    bedrooms: tuple[BedroomSplit, ...]
    bands: tuple[PriceBand, ...]
    months: tuple[MonthFigures, ...]  # the TREND_MONTHS months ending with the period
    recent: tuple[Sale, ...]  # the most recent sales of the period, newest first
    profile: Profile | None  # the highlighted agent or agency

    def standings(self, kind: Kind) -> tuple[Standing, ...]:
        """The ranking a report of ``kind`` shows."""
        return self.agents if kind == Kind.AGENTS else self.agencies


def analyse(spec: ReportSpec, source: SalesSource) -> MarketAnalysis:
    """Fetch the suburb's sales from ``source`` and analyse them for ``spec``.

    Raises ``NoSalesDataError`` when the suburb has no sales at all (suggesting close
    spellings when the source can list its suburbs) or none in the period, and
    ``HighlightNotFoundError`` when ``spec.highlight`` has no sales in the period.
    """
    if spec.period_end is not None:
        period = period_ending(spec.period_end, spec.period_months)
        found = source.sales(spec.suburb, spec.state, *window(period))
        if any(sale.sold_date in period for sale in found):
            return analyse_sales(spec, found)
    # Without an end date the period ends with the month of the suburb's latest sale, so
    # the data never goes stale; with one, the full history tells "unknown" from "quiet".
    history = source.sales(spec.suburb, spec.state)
    if not history:
        raise NoSalesDataError(_unknown_suburb_message(spec, source))
    return analyse_sales(spec, history)


def window(period: Period) -> tuple[date, date]:
    """The first and last days a report of ``period`` looks at: the previous period and the
    trend chart's months, up to the period's end. Sales outside it change no figure."""
    earliest = min(period.previous.first_day, period.last.shift(1 - TREND_MONTHS).first_day)
    return earliest, period.end


def analyse_sales(spec: ReportSpec, sales: Sequence[Sale]) -> MarketAnalysis:
    """Analyse the suburb's ``sales`` (any dates and order; the period picks its own)."""
    if not sales:
        raise NoSalesDataError(f"no sales recorded for {spec.suburb.strip()}, {spec.state}")
    latest = max(sales, key=lambda sale: sale.sold_date)
    period = period_ending(spec.period_end or latest.sold_date, spec.period_months)
    chosen = [sale for sale in sales if sale.sold_date in period]
    if not chosen:
        first = min(sale.sold_date for sale in sales)
        raise NoSalesDataError(
            f"no sales recorded for {latest.suburb}, {spec.state} in {period.label} "
            f"({period.length}); sales on record run from {first:%B %Y} to "
            f"{latest.sold_date:%B %Y}"
        )
    # Whether the source sent the whole history or only the window, the report is the same.
    first_day, last_day = window(period)
    seen = [sale for sale in sales if first_day <= sale.sold_date <= last_day]
    before = [sale for sale in seen if sale.sold_date in period.previous]
    display = max(chosen, key=lambda sale: sale.sold_date)
    agents = _rank(chosen, before, lambda s: (s.agent, s.agency))
    agencies = _rank(chosen, before, lambda s: (s.agency, None))
    kind = Kind(spec.kind)  # a Struct built in code (not decoded) may hold a plain str
    return MarketAnalysis(
        suburb=display.suburb,
        state=display.state,
        postcode=display.postcode,
        period=period,
        latest_sale=display.sold_date,
        current=Figures.of(chosen),
        previous=Figures.of(before),
        agents_now=len(agents),
        agencies_now=len(agencies),
        agents=agents,
        agencies=agencies,
        types=by_type(chosen),
        bedrooms=by_bedrooms(chosen),
        bands=price_bands(chosen),
        months=monthly(seen, [period.last.shift(-i) for i in range(TREND_MONTHS)][::-1]),
        recent=recent_sales(chosen),
        profile=find_profile(
            spec.highlight if isinstance(spec.highlight, str) else None,
            kind=kind,
            standings=agents if kind is Kind.AGENTS else agencies,
            chosen=chosen,
            history=seen,
            place=f"{display.suburb}, {display.state}",
            period=period,
        ),
    )


_GroupKey = Callable[[Sale], tuple[str, str | None]]


def _rank(chosen: Sequence[Sale], before: Sequence[Sale], key: _GroupKey) -> tuple[Standing, ...]:
    groups: defaultdict[tuple[str, str | None], list[Sale]] = defaultdict(list)
    earlier: defaultdict[tuple[str, str | None], list[Sale]] = defaultdict(list)
    for sale in chosen:
        groups[key(sale)].append(sale)
    for sale in before:
        earlier[key(sale)].append(sale)
    summed = {group: Figures.of(members) for group, members in groups.items()}
    order = sorted(summed, key=lambda g: sales_order(g[0], summed[g], g[1] or ""))
    return tuple(
        Standing(
            rank=rank,
            name=name,
            agency=agency,
            agents=len({sale.agent for sale in groups[name, agency]}),
            figures=summed[name, agency],
            share=share(summed[name, agency].sales, len(chosen)),
            previous=Figures.of(earlier.get((name, agency), [])),
            previous_share=share(len(earlier.get((name, agency), [])), len(before))
            if before
            else None,
        )
        for rank, (name, agency) in enumerate(order, start=1)
    )


def _unknown_suburb_message(spec: ReportSpec, source: SalesSource) -> str:
    wanted = " ".join(spec.suburb.split())
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


__all__ = ["TREND_MONTHS", "MarketAnalysis", "Standing", "analyse", "analyse_sales", "window"]
