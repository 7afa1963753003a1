"""The pieces that write a report's figures: calendar periods, number formats, and the prose
around the figures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.reports.analytics import analyse_sales
from agentlink.reports.format import (
    change_days,
    change_percent,
    money,
    money_short,
    percent,
    signed,
)
from agentlink.reports.market import price_bands
from agentlink.reports.narrative import overview_lede
from agentlink.reports.periods import Month, Period, period_ending
from tests.support.reports import sale


class TestPeriods:
    """Whole calendar months, named as people name them."""

    @pytest.mark.parametrize(
        ("end", "months", "label", "first", "last"),
        [
            (
                date(2026, 10, 24),
                12,
                "November 2025 – October 2026",
                date(2025, 11, 1),
                date(2026, 10, 31),
            ),
            (date(2026, 2, 1), 1, "February 2026", date(2026, 2, 1), date(2026, 2, 28)),
            (date(2024, 2, 10), 1, "February 2024", date(2024, 2, 1), date(2024, 2, 29)),
            (date(2026, 5, 31), 3, "March – May 2026", date(2026, 3, 1), date(2026, 5, 31)),
            (
                date(2026, 1, 31),
                13,
                "January 2025 – January 2026",
                date(2025, 1, 1),
                date(2026, 1, 31),
            ),
        ],
    )
    def test_period_ending(
        self, end: date, months: int, label: str, first: date, last: date
    ) -> None:
        """The months ending with the month of ``end``."""
        period = period_ending(end, months)
        assert (period.label, period.first_day, period.end) == (label, first, last)
        assert period.length == ("1 month" if months == 1 else f"{months} months")

    def test_previous_period_and_membership(self) -> None:
        """The previous period abuts; days on either edge fall on the right side."""
        period = Period(Month(2026, 10), 12)
        assert period.previous == Period(Month(2025, 10), 12)
        assert date(2025, 11, 1) in period
        assert date(2025, 10, 31) not in period
        assert date(2025, 10, 31) in period.previous

    def test_default_period_is_the_month_of_the_latest_sale(self) -> None:
        """A latest sale on 3 March makes the period April – March, March included whole."""
        days = [date(2026, 3, 3), date(2025, 4, 1), date(2025, 3, 31)]
        a = analyse_sales(
            ReportSpec(kind=Kind.AGENTS, suburb="Testville", state=AuState.NSW),
            [sale(d) for d in days],
        )
        assert (a.period.label, a.current.sales, a.previous.sales) == (
            "April 2025 – March 2026",
            2,
            1,
        )


class TestFormats:
    """Money to the cent, one precision for shares, signed changes."""

    def test_money(self) -> None:
        """Whole dollars, with cents only when there are some."""
        assert (money(1_965_000.0), money(1_362_500.5), money(None)) == (
            "$1,965,000",
            "$1,362,500.50",
            "–",
        )
        assert (money_short(1_250_000), money_short(450_000), money_short(2_000_000)) == (
            "$1.25m",
            "$450k",
            "$2m",
        )

    def test_percent_rounds_half_up_to_one_decimal(self) -> None:
        """1/16 is 6.25% -> 6.3% (not banker's 6.2%); 1/3 is 33.3%."""
        assert (percent(Fraction(1, 16)), percent(Fraction(1, 3)), percent(Fraction(1))) == (
            "6.3%",
            "33.3%",
            "100.0%",
        )

    def test_changes(self) -> None:
        """A real minus sign; none for zero; days in words."""
        assert change_percent(Fraction(-141, 1000)) == "\u221214.1%"
        assert change_percent(None) == "–"
        assert signed(Decimal("0.0"), "%") == "0.0%"
        assert (change_days(24, 24), change_days(25, 24), change_days(22.5, 24)) == (
            "no change",
            "+1 day",
            "\u22121.5 days",
        )


class TestProse:
    """The overview's sentence reads right in every direction."""

    @pytest.mark.parametrize(
        ("before", "expected"),
        [
            (
                [2_000_000, 2_000_000],
                "That is as many as in the previous 12 months, "
                "and the median price held at $2,000,000.",
            ),
            (
                [1_000_000],
                "That is 1 more than in the previous 12 months, "
                "and the median price rose 100.0% to $2,000,000.",
            ),
            (
                [3_000_000] * 3,
                "That is 1 fewer than in the previous 12 months, "
                "and the median price fell 33.3% to $2,000,000.",
            ),
        ],
    )
    def test_direction(self, before: list[int], expected: str) -> None:
        """Same, more, fewer; held, rose, fell."""
        now = [sale(date(2026, 6, 1), price=2_000_000), sale(date(2026, 6, 2), price=2_000_000)]
        earlier = [sale(date(2025, 3, 1 + i), price=p) for i, p in enumerate(before)]
        a = analyse_sales(
            ReportSpec(kind=Kind.AGENTS, suburb="Testville", state=AuState.NSW), now + earlier
        )
        assert expected in overview_lede(a)

    @pytest.mark.parametrize(
        ("now", "moved"),
        [
            (1_000_400, "was flat at $1,000,400"),
            (999_600, "was flat at $999,600"),
            (1_000_500, "rose 0.1% to $1,000,500"),
            (999_500, "fell 0.1% to $999,500"),
        ],
    )
    def test_a_change_that_rounds_to_zero_reads_flat(self, now: int, moved: str) -> None:
        """+0.04% and −0.04% print as 0.0%: flat, not "rose 0.0%"; ±0.05% rose or fell."""
        a = analyse_sales(
            ReportSpec(kind=Kind.AGENTS, suburb="Testville", state=AuState.NSW),
            [sale(date(2026, 6, 1), price=now), sale(date(2025, 3, 1), price=1_000_000)],
        )
        assert f"and the median price {moved}." in overview_lede(a)


class TestPriceBands:
    """Bands of round amounts, none of them empty."""

    @pytest.mark.parametrize(
        ("prices", "bands"),
        [
            (
                [300_000, 400_000, 500_000, 700_000, 1_130_000, 1_130_000],
                [
                    (None, 400_000, 1),
                    (400_000, 500_000, 1),
                    (500_000, 700_000, 1),
                    (700_000, None, 3),
                ],
            ),
            ([1_130_000] * 3 + [1_600_000] * 3, [(None, 1_250_000, 3), (1_250_000, None, 3)]),
            ([1_130_000] * 5, [(1_000_000, 1_250_000, 5)]),
            (
                [900_000, 1_000_000, 1_000_000, 1_200_000, 2_000_000],
                [(None, 1_000_000, 1), (1_000_000, 1_250_000, 3), (1_250_000, None, 1)],
            ),
        ],
    )
    def test_no_band_is_empty(
        self, prices: list[int], bands: list[tuple[int | None, int | None, int]]
    ) -> None:
        """A top edge above every price (rounded up to the ladder) or two edges with no price
        between them are dropped; prices all in one step make one band between ladder steps."""
        found = price_bands([sale(date(2026, 6, 1), price=price) for price in prices])
        assert [(band.low, band.high, band.sales) for band in found] == bands
