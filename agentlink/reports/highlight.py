"""The highlighted agent or agency: the request's ``highlight``, found in the ranking.

An agent sends a vendor this report to win a listing, so the highlight must be right or
absent: a name that matches nobody with sales in the period fails the job at once
(``HighlightNotFoundError``, a permanent error) with the names it may have meant, rather
than producing a report that quietly lacks what the agent asked for. The request can be
sent again with the corrected name, or without ``highlight`` for the plain report.

Names match case-insensitively, with runs of spaces counted as one. An agent who moved
agency during the period matches one row per agency; the profile adds them up.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from agentlink.errors import HighlightNotFoundError
from agentlink.jobs import Kind
from agentlink.reports.figures import Figures, sales_order, share
from agentlink.reports.periods import Period
from agentlink.reports.sales import Sale

if TYPE_CHECKING:
    from agentlink.reports.analytics import Standing


@dataclass(frozen=True, slots=True)
class TeamMember:
    """One agent of the highlighted agency, with their sales in the period."""

    name: str
    figures: Figures
    share: Fraction  # of the agency's sales


@dataclass(frozen=True, slots=True)
class Profile:
    """The highlighted agent or agency, against the suburb."""

    name: str  # as the data spells it
    kind: Kind
    rows: tuple[Standing, ...]  # its ranking rows (two for an agent who moved agency)
    figures: Figures
    share: Fraction  # of the suburb's sales
    previous: Figures  # in the previous period
    team: tuple[TeamMember, ...]  # the agency's agents (agency report); empty otherwise

    @property
    def ranks(self) -> tuple[int, ...]:
        """Its rank(s) in the table."""
        return tuple(row.rank for row in self.rows)


def normal(name: str) -> str:
    """The form names are compared in."""
    return " ".join(name.split()).casefold()


def find_profile(
    highlight: str | None,
    *,
    kind: Kind,
    standings: Sequence[Standing],
    chosen: Sequence[Sale],
    history: Sequence[Sale],
    place: str,
    period: Period,
) -> Profile | None:
    """The profile ``highlight`` asks for (None without one); see the module docstring.

    ``history`` is the suburb's sales the report looks at (``analytics.window``): the
    previous period's, and the latest before the period that a failure message names.
    """
    if highlight is None or not highlight.strip():
        return None
    wanted = normal(highlight)
    rows = tuple(row for row in standings if normal(row.name) == wanted)
    if not rows:
        raise HighlightNotFoundError(
            _not_found(
                highlight,
                kind=kind,
                standings=standings,
                history=history,
                place=place,
                period=period,
            )
        )

    def named(sale: Sale) -> str:
        return sale.agent if kind is Kind.AGENTS else sale.agency

    theirs = [sale for sale in chosen if normal(named(sale)) == wanted]
    before = [sale for sale in history if sale.sold_date in period.previous]
    team: tuple[TeamMember, ...] = ()
    if kind is Kind.AGENCY:
        by_agent: dict[str, list[Sale]] = {}
        for sale in theirs:
            by_agent.setdefault(sale.agent, []).append(sale)
        figures = {agent: Figures.of(sales) for agent, sales in by_agent.items()}
        team = tuple(
            TeamMember(agent, figures[agent], share(figures[agent].sales, len(theirs)))
            for agent in sorted(figures, key=lambda a: sales_order(a, figures[a]))
        )
    return Profile(
        name=rows[0].name,
        kind=kind,
        rows=rows,
        figures=Figures.of(theirs),
        share=share(len(theirs), len(chosen)),
        previous=Figures.of([sale for sale in before if normal(named(sale)) == wanted]),
        team=team,
    )


def _not_found(
    highlight: str,
    *,
    kind: Kind,
    standings: Sequence[Standing],
    history: Sequence[Sale],
    place: str,
    period: Period,
) -> str:
    noun = "agent" if kind is Kind.AGENTS else "agency"
    wanted = normal(highlight)
    message = (
        f"highlight {highlight.strip()!r}: no {noun} of that name has sales in {place} "
        f"in {period.label}"
    )
    earlier = [
        sale.sold_date
        for sale in history
        if sale.sold_date < period.first_day
        and normal(sale.agent if kind is Kind.AGENTS else sale.agency) == wanted
    ]
    if earlier:
        message += (
            f" (their latest sale there before {period.first_day:%-d %B %Y} was on "
            f"{max(earlier):%-d %B %Y})"
        )
    names = {normal(row.name): row.name for row in standings}
    close = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.6)
    if close:
        message += f" (did you mean {' or '.join(names[name] for name in close)}?)"
    return message + "; send the request without highlight for a report without a profile"
