"""The sentences and headline figures of a report, written from the analysis.

Prose with numbers in it is where plural slips ("1 months") and wrong directions ("rose
by −3%") hide, so it is written here, in Python, where it can be tested, rather than in
template conditionals. Every figure goes through ``format``, like the tables'.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentlink.jobs import Kind
from agentlink.reports.analytics import MarketAnalysis
from agentlink.reports.figures import Figures, change
from agentlink.reports.figures import percent as percent_value
from agentlink.reports.format import (
    MINUS,
    NONE,
    change_days,
    change_percent,
    count,
    days,
    money,
    percent,
)


@dataclass(frozen=True, slots=True)
class Kpi:
    """One headline figure with its change against the previous period."""

    label: str
    value: str
    change: str  # "+4.1%", "−3 days"; empty without a previous period to compare
    versus: str  # "vs 293" or why there is no comparison


def kpis(now: Figures, before: Figures) -> tuple[Kpi, ...]:
    """The four headline figures of the overview (and of a profile)."""
    had = before.sales > 0
    if not had:
        return tuple(
            Kpi(label, value, "", "no previous sales")
            for label, value in (
                ("Properties sold", f"{now.sales:,}"),
                ("Median price", money(now.median_price)),
                ("Sales value", money(now.value)),
                ("Median days on market", days(now.median_days)),
            )
        )
    return (
        Kpi(
            "Properties sold",
            f"{now.sales:,}",
            change_percent(change(now.sales, before.sales)),
            f"vs {before.sales:,}",
        ),
        Kpi(
            "Median price",
            money(now.median_price),
            change_percent(change(now.median_price, before.median_price)),
            f"vs {money(before.median_price)}",
        ),
        Kpi(
            "Sales value",
            money(now.value),
            change_percent(change(now.value, before.value)),
            f"vs {money(before.value)}",
        ),
        Kpi(
            "Median days on market",
            days(now.median_days),
            change_days(now.median_days, before.median_days),
            f"vs {days(before.median_days)}",
        ),
    )


def overview_lede(a: MarketAnalysis) -> str:
    """The overview's opening paragraph."""
    now, before, period = a.current, a.previous, a.period
    text = (
        f"{count(now.sales, 'property', 'properties')} sold in {a.suburb} in {period.label} "
        f"({period.length}), for a combined sales value of {money(now.value)}. "
    )
    if before.sales:
        if now.sales == before.sales:
            text += f"That is as many as in the previous {period.length}"
        else:
            more = "more" if now.sales > before.sales else "fewer"
            gap = abs(now.sales - before.sales)
            text += f"That is {gap:,} {more} than in the previous {period.length}"
        text += f", and the median price {_moved(now.median_price, before.median_price)}. "
    else:
        text += f"No sales were recorded in the previous {period.length}, so nothing to compare. "
    made = "the sale" if now.sales == 1 else "these sales"
    return text + (
        f"{count(a.agents_now, 'agent')} at {count(a.agencies_now, 'agency', 'agencies')} "
        f"made {made}."
    )


def ranking_lede(a: MarketAnalysis, kind: Kind) -> str:
    """The paragraph above the ranking table."""
    who = "agent" if kind is Kind.AGENTS else "agency"
    text = (
        f"Every {who} with a sale in {a.suburb} in {a.period.label}, ranked by properties "
        "sold, then by sales value. "
    )
    if a.previous.sales:
        text += (
            f"Change in sales compares each {who}'s properties sold with the previous "
            f"{a.period.length} ({a.period.previous.label})."
        )
    else:
        text += f"No sales were recorded in the previous {a.period.length} to compare with."
    return text


def profile_lede(a: MarketAnalysis, kind: Kind) -> str:
    """The opening sentence of the highlighted agent's or agency's profile."""
    profile = a.profile
    if profile is None:
        return ""
    standings = a.standings(kind)
    noun = ("agent", "agents") if kind is Kind.AGENTS else ("agency", "agencies")
    of = len(standings)
    if len(profile.rows) == 1:
        row = profile.rows[0]
        at = f" of {row.agency}" if row.agency else ""
        where = f"ranked {_ordinal(row.rank)} of {of} {noun[0] if of == 1 else noun[1]}"
        text = f"{profile.name}{at} {where} in {a.suburb} in {a.period.label}"
    else:
        places = " and ".join(f"{_ordinal(row.rank)} at {row.agency}" for row in profile.rows)
        text = (
            f"{profile.name} sold for {len(profile.rows)} agencies in {a.suburb} in "
            f"{a.period.label}, ranking {places} of {of} {noun[1]}"
        )
    sold = count(profile.figures.sales, "property", "properties")
    return (
        f"{text}, with {sold} sold: {percent(profile.share)} of the suburb's "
        f"{a.current.sales:,} {'sale' if a.current.sales == 1 else 'sales'}."
    )


def difference_money(value: float | None, suburb: float | None) -> str:
    """``$85,000 above the suburb``: a median price against the suburb's."""
    if value is None or suburb is None:
        return NONE
    gap = value - suburb
    if gap == 0:
        return "the suburb's median"
    return f"{money(abs(gap))} {'above' if gap > 0 else 'below'}"


def difference_days(value: float | None, suburb: float | None) -> str:
    """``3 days faster``: a median days on market against the suburb's."""
    if value is None or suburb is None:
        return NONE
    gap = value - suburb
    if gap == 0:
        return "the suburb's median"
    word = "day" if abs(gap) == 1 else "days"
    return f"{days(abs(gap))} {word} {'slower' if gap > 0 else 'faster'}"


def _moved(now: float | None, before: float | None) -> str:
    if now is None or before is None or now == before:
        return f"held at {money(now)}"
    moved = change(now, before)
    # A change too small to show at the printed precision would read "rose 0.0%".
    if moved is None or percent_value(moved) == 0:
        return f"was flat at {money(now)}"
    verb = "rose" if now > before else "fell"
    return f"{verb} {change_percent(moved).lstrip('+' + MINUS)} to {money(now)}"


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"
