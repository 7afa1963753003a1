"""Every figure of both reports, recounted from the raw CSV rows and found in the PDF.

The recount (tests/support/recount.py) uses only the csv, statistics and decimal modules and the
definitions printed in the report's methodology; the PDF is read back with pypdf. Several
sample suburbs (a large market, a mid-sized one, a thin one) and a CSV written here with
traps: sales one day either side of the period, an agent who moved agency, ties in
sales and in sales value, a median between two sales (cents), a price written $1,250,000.
"""

from __future__ import annotations

import re

from agentlink.jobs import Kind
from tests.support import recount as rc
from tests.support.figures import (
    EN,
    Rendered,
    now_and_before,
)


class TestPeriodAndHeadlines:
    """The period, the cover and the overview's headline figures."""

    def test_period_is_whole_calendar_months(self, rendered: Rendered) -> None:
        """The cover names the months, the methodology the first and last day."""
        w, _, _ = now_and_before(rendered)
        first = f"{1} {rc.month_name(w.first)}"
        assert f"{w.label} · 12 months" in rendered.text
        assert f"from {first} to " in rendered.text
        assert (
            f"The previous period is the 12 months before it, {w.previous.label}" in rendered.text
        )

    def test_cover_figures(self, rendered: Rendered) -> None:
        """Properties sold, median price and the number of ranked agents or agencies."""
        _, now, _ = now_and_before(rendered)
        g = rc.Group.of(now)
        ranked = (
            {(x.agent, x.agency) for x in now}
            if rendered.case.kind is Kind.AGENTS
            else {x.agency for x in now}
        )
        who = ("agent", "agents") if rendered.case.kind is Kind.AGENTS else ("agency", "agencies")
        sold = "property" if g.n == 1 else "properties"
        assert (
            f"{g.n} {sold} sold {rc.money(g.median)} median price {len(ranked)} " in rendered.text
        )
        assert f"{len(ranked)} {who[0] if len(ranked) == 1 else who[1]} with sales" in rendered.text

    def test_kpis_with_changes(self, rendered: Rendered) -> None:
        """Each KPI with its change against the previous period, or why there is none."""
        _, now, before = now_and_before(rendered)
        g = rc.Group.of(now)
        t = rendered.text
        if not before:
            assert f"PROPERTIES SOLD {g.n} no previous sales" in t
            assert f"MEDIAN DAYS ON MARKET {rc.days(g.dom)} no previous sales" in t
            return
        p = rc.Group.of(before)
        assert f"PROPERTIES SOLD {g.n} {rc.change(g.n, p.n)} vs {p.n}" in t
        assert (
            f"MEDIAN PRICE {rc.money(g.median)} {rc.change(g.median, p.median)} "
            f"vs {rc.money(p.median)}" in t
        )
        assert (
            f"SALES VALUE {rc.money(g.value)} {rc.change(g.value, p.value)} vs {rc.money(p.value)}"
            in t
        )
        dom = (
            "no change"
            if g.dom == p.dom
            else rc.signed(g.dom - p.dom, " day" if abs(g.dom - p.dom) == 1 else " days")
        )
        assert f"MEDIAN DAYS ON MARKET {rc.days(g.dom)} {dom} vs {rc.days(p.dom)}" in t

    def test_lede(self, rendered: Rendered) -> None:
        """The overview's first sentence: properties sold and the combined sales value."""
        w, now, _ = now_and_before(rendered)
        g = rc.Group.of(now)
        sold = "1 property" if g.n == 1 else f"{g.n} properties"
        suburb = now[0].suburb
        assert (
            f"{sold} sold in {suburb} in {w.label} (12 months), "
            f"for a combined sales value of {rc.money(g.value)}." in rendered.text
        )


class TestMarketShape:
    """Price bands, property types and bedrooms."""

    def test_price_bands_hold_what_they_say(self, rendered: Rendered) -> None:
        """Each printed band's count and share recounted from its printed bounds."""
        _, now, _ = now_and_before(rendered)
        amount = r"\$[\d.]+[mk]"
        band = rf"(Under {amount}|{amount} – {amount}|{amount} and over) (\d+) ([\d.]+%)"
        found = re.findall(band, rendered.text)
        if len(now) < 5:
            assert not found
            assert "too few for a price distribution" in rendered.text
            return
        assert len(found) >= 3
        total = 0
        for label, count, share in found:
            if label.startswith("Under"):
                low, high = None, rc.amount(label.split()[1])
            elif label.endswith("and over"):
                low, high = rc.amount(label.split()[0]), None
            else:
                low, high = (rc.amount(part) for part in label.split(" – "))
            n = rc.in_band(now, low, high)
            assert (int(count), share) == (n, rc.share(n, len(now))), label
            total += n
        assert total == len(now)

    def test_property_types(self, rendered: Rendered) -> None:
        """Sold, share and median price per property type."""
        _, now, _ = now_and_before(rendered)
        for kind in ("house", "unit", "townhouse", "land"):
            mine = [x for x in now if x.kind == kind]
            if mine:
                g = rc.Group.of(mine)
                assert (
                    f"{kind.capitalize()} {g.n} {rc.share(g.n, len(now))} {rc.money(g.median)}"
                    in rendered.text
                )

    def test_bedrooms(self, rendered: Rendered) -> None:
        """Sold, median price and median days per bedroom count (5 or more together)."""
        _, now, _ = now_and_before(rendered)
        section = rendered.text.split(
            "Homes by bedrooms BEDROOMS SOLD MEDIAN PRICE MEDIAN DAYS ON MARKET"
        )[1]
        for beds in range(1, 6):
            mine = [x for x in now if x.beds == beds or (beds == 5 and x.beds > 5)]
            if mine:
                g = rc.Group.of(mine)
                label = "5 or more" if beds == 5 else str(beds)
                assert f"{label} {g.n} {rc.money(g.median)} {rc.days(g.dom)}" in section


class TestRanking:
    """The ranked table, the chart beside it, and the total row."""

    def ranked(self, r: Rendered) -> tuple[list[rc.Ranked], int, int]:
        _, now, before = now_and_before(r)
        key = rc.by_agent if r.case.kind is Kind.AGENTS else rc.by_agency
        return rc.rank(now, before, key), len(now), len(before)

    def test_every_row(self, rendered: Rendered) -> None:
        """Rank, name, (agency or agents), sold, change, share, median, value, days: in order."""
        rows, whole, before = self.ranked(rendered)
        for row in rows:
            numbers = rc.ranking_numbers(row, whole, before)
            if rendered.case.kind is Kind.AGENCY:
                expected = f" {row.rank} {row.name} {row.agents} {numbers} "
                assert expected in rendered.text, expected
            else:
                # A long agency name may wrap: its first words come before the figures.
                pattern = rf" {row.rank} {re.escape(row.name)} (.{{1,60}}?) {re.escape(numbers)} "
                match = re.search(pattern, rendered.text)
                assert match, pattern
                assert row.agency
                assert row.agency.startswith(match.group(1))

    def test_order_is_the_documented_one(self, rendered: Rendered) -> None:
        """Rows appear in the recounted rank order (ties by value, then name)."""
        rows, _, _ = self.ranked(rendered)
        positions = [rendered.text.find(f" {row.rank} {row.name} ") for row in rows]
        assert all(p >= 0 for p in positions)
        assert positions == sorted(positions)

    def test_total_row(self, rendered: Rendered) -> None:
        """The suburb's own row closes the table."""
        _, now, before = now_and_before(rendered)
        g = rc.Group.of(now)
        whos = "agents" if rendered.case.kind is Kind.AGENTS else "agencies"
        moved = rc.signed(g.n - len(before)) if before else EN
        expected = (
            f"{now[0].suburb}, all {whos} {g.n} {moved} 100.0% {rc.money(g.median)} "
            f"{rc.money(g.value)} {rc.days(g.dom)}"
        )
        assert expected in rendered.text

    def test_chart_shares_match_the_table(self, rendered: Rendered) -> None:
        """Each bar of the chart carries the same share text as its table row."""
        rows, whole, _ = self.ranked(rendered)
        if len(rows) < 3:
            assert " · 100.0%" not in rendered.text  # no chart for one or two rows
            return
        for row in rows[:10]:
            assert f"{row.rank}. {row.name} " in rendered.text
            assert f"{row.now.n} · {rc.share(row.now.n, whole)}" in rendered.text
