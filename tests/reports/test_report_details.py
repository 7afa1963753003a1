"""The rest of both reports, recounted and found in the PDF: recent sales, the highlighted
profile, the pages; and the trap CSV's special cases asserted by name. The cases and their
renders: tests/support/figures.py and tests/reports/conftest.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentlink.jobs import Kind
from agentlink.reports import CsvSalesSource
from tests.support import recount as rc
from tests.support.figures import (
    COLUMNS,
    EN,
    JOB_ID,
    TRAP_CASES,
    Rendered,
    now_and_before,
    render,
)


class TestRecentSales:
    """The ten most recent sales of the period, newest first."""

    def test_rows(self, rendered: Rendered) -> None:
        """Date, price, days on market and the agent (or agency), for each, in order."""
        _, now, _ = now_and_before(rendered)
        newest = sorted(now, key=lambda x: (-x.sold.toordinal(), x.address, x.agent))[:10]
        text = rendered.text.split("Recent sales")[-1]
        at = 0
        for sale in newest:
            who = sale.agent if rendered.case.kind is Kind.AGENTS else sale.agency
            expected = f"{rc.money(sale.price)} {sale.dom} {who}"
            found = text.find(expected, at)
            assert found >= at, expected
            assert f"{sale.sold.day} {sale.sold:%b %Y}" in text[max(0, found - 80) : found]
            at = found + len(expected)


class TestProfile:
    """The highlighted agent's or agency's profile."""

    def test_profile_figures(self, rendered: Rendered) -> None:
        """Sales, change, share and medians of the highlighted name against the suburb."""
        if rendered.case.highlight is None:
            assert "at a glance" not in rendered.text
            return
        _, now, before = now_and_before(rendered)

        def name_of(x: rc.Row) -> str:
            return x.agent if rendered.case.kind is Kind.AGENTS else x.agency

        wanted = rendered.case.highlight.casefold()
        mine = [x for x in now if name_of(x).casefold() == wanted]
        earlier = [x for x in before if name_of(x).casefold() == wanted]
        g, s = rc.Group.of(mine), rc.Group.of(now)
        shown = name_of(mine[0])
        t = rendered.text
        assert f"{shown} at a glance" in t
        moved = rc.signed(g.n - len(earlier)) if before else EN
        assert f"Properties sold {g.n} {moved} {s.n} {rc.share(g.n, s.n)} of sales" in t
        assert f"Median price {rc.money(g.median)} " in t
        assert f"Sales value {rc.money(g.value)} " in t
        assert f"{rc.money(s.value)} {rc.share(g.value, s.value)} of value" in t
        gap = g.dom - s.dom
        word = (
            "the suburb's median"
            if gap == 0
            else f"{rc.days(abs(gap))} {'day' if abs(gap) == 1 else 'days'} "
            f"{'slower' if gap > 0 else 'faster'}"
        )
        assert f"Median days on market {rc.days(g.dom)} " in t
        assert f"{rc.days(s.dom)} {word}" in t
        if rendered.case.kind is Kind.AGENCY:
            agents: dict[str, list[rc.Row]] = {}
            for x in mine:
                agents.setdefault(x.agent, []).append(x)
            for agent, theirs in agents.items():
                a = rc.Group.of(theirs)
                assert (
                    f"{agent} {a.n} {rc.share(a.n, g.n)} {rc.money(a.median)} "
                    f"{rc.money(a.value)} {rc.days(a.dom)}" in t
                )


class TestPages:
    """What every report page carries, and what no client page may carry."""

    def test_no_job_id_on_the_pages(self, rendered: Rendered) -> None:
        """The job id is only in the PDF's metadata."""
        assert JOB_ID not in rendered.text

    def test_page_numbers(self, rendered: Rendered) -> None:
        """Every page after the cover says "Page X of Y"."""
        for page in range(2, rendered.pages + 1):
            assert f"Page {page} of {rendered.pages}" in rendered.text

    def test_no_wrong_plurals(self, rendered: Rendered) -> None:
        """No "1 months", "1 sales", "1 agents"."""
        assert not re.search(r"\b1 (months|sales|agents|agencies|properties|days)\b", rendered.text)


@pytest.fixture(scope="module")
def agents(trap_rows: tuple[Path, list[rc.Row]]) -> Rendered:
    path, rows = trap_rows
    return render(TRAP_CASES[0], CsvSalesSource(path, columns=COLUMNS), rows)


class TestTraps:
    """The trap CSV's special cases, asserted by name."""

    def test_boundary_days(self, agents: Rendered) -> None:
        """1 November 2025 and 31 October 2026 count; 31 October 2025 is the previous period."""
        assert "PROPERTIES SOLD 11 +266.7% vs 3" in agents.text
        assert "31 Oct 2026 1 Edge Street" in agents.text
        # Alpha Realty: 1 November 2025 and 14 February 2026 now, 31 October 2025 before.
        assert any(line.startswith("5 Sam Lee Alpha Realty 2 +1 ") for line in agents.lines)

    def test_mover_has_a_row_per_agency(self, agents: Rendered) -> None:
        """Sam Lee is listed at Alpha Realty and at Beta Property, with the sales made at each."""
        assert any(line.startswith("2 Sam Lee Beta Property 2 ") for line in agents.lines)
        assert any(line.startswith("5 Sam Lee Alpha Realty 2 ") for line in agents.lines)
        assert "Sam Lee sold for 2 agencies in Testville" in agents.text
        assert "ranking 2nd at Beta Property and 5th at Alpha Realty" in agents.text

    def test_ties_break_on_value_then_name(self, agents: Rendered) -> None:
        """Bo Yu and Cy Zed tie on sales and value: Bo Yu first."""
        assert agents.text.find(" Bo Yu Gamma Homes 2 ") < agents.text.find(
            " Cy Zed Gamma Homes 2 "
        )

    def test_median_between_two_sales_shows_cents(self, agents: Rendered) -> None:
        """Sam Lee at Beta Property: $1,250,000 and $1,475,001 -> $1,362,500.50."""
        assert "$1,362,500.50" in agents.text
