"""Report periods: whole calendar months, and how they are named.

A period is ``months`` calendar months ending with a given month, so "12 months to
October 2026" is 1 November 2025 to 31 October 2026 whatever day the data ends on, and
the previous period of the same length is the 12 months before it. Months are compared
as (year, month) pairs, never by adding days, so February and leap years need no care.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

EN_DASH = "\u2013"


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """One calendar month."""

    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Month:
        """The month ``day`` falls in."""
        return cls(day.year, day.month)

    def shift(self, months: int) -> Month:
        """The month ``months`` later (earlier when negative)."""
        year, index = divmod(self.year * 12 + self.month - 1 + months, 12)
        return Month(year, index + 1)

    @property
    def first_day(self) -> date:
        """The 1st of the month."""
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        """The month's last day (28 February, 29 in a leap year, 31 October, …)."""
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def name(self) -> str:
        """``October 2026``."""
        return f"{calendar.month_name[self.month]} {self.year}"

    @property
    def short(self) -> str:
        """``Oct``: a chart's axis label."""
        return calendar.month_abbr[self.month]


@dataclass(frozen=True, slots=True)
class Period:
    """``months`` whole calendar months ending with ``last``."""

    last: Month
    months: int

    @property
    def first(self) -> Month:
        """The period's first month."""
        return self.last.shift(1 - self.months)

    @property
    def first_day(self) -> date:
        """The first day whose sales count."""
        return self.first.first_day

    @property
    def end(self) -> date:
        """The last day whose sales count."""
        return self.last.last_day

    @property
    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(self.last.shift(-self.months), self.months)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first_day <= day <= self.end

    def month_list(self) -> list[Month]:
        """The period's months, oldest first."""
        return [self.first.shift(i) for i in range(self.months)]

    @property
    def label(self) -> str:
        """``November 2025 – October 2026``, ``March – May 2026``, or ``February 2026``."""
        first, last = self.first, self.last
        if self.months == 1:
            return last.name
        if first.year == last.year:
            return f"{calendar.month_name[first.month]} {EN_DASH} {last.name}"
        return f"{first.name} {EN_DASH} {last.name}"

    @property
    def length(self) -> str:
        """``12 months`` or ``1 month``."""
        return f"{self.months} month" + ("" if self.months == 1 else "s")


def period_ending(day: date, months: int) -> Period:
    """The ``months`` calendar months ending with the month that contains ``day``."""
    return Period(Month.of(day), months)
