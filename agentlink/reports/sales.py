"""What a report is made of: recorded sales, and the protocol every data source speaks.

Reports only ever ask one question of their data ("the sales of this suburb, between these
dates"), so a source is a single method, and operators can swap the bundled sample for
their own CSV export or an HTTP endpoint (``agentlink.reports.sources`` picks one from the
settings). A source that can also list its suburbs lets a failed report suggest spellings;
one that can describe itself names its data in the report's methodology.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

from agentlink.jobs import AuState
from agentlink.report_settings import SALE_COLUMNS

COLUMNS = SALE_COLUMNS


class PropertyType(enum.StrEnum):
    """What kind of property changed hands."""

    HOUSE = "house"
    UNIT = "unit"
    TOWNHOUSE = "townhouse"
    LAND = "land"


@dataclass(frozen=True, slots=True)
class Sale:
    """One recorded sale; ``price`` is in whole Australian dollars."""

    sold_date: date
    address: str
    suburb: str
    state: AuState
    postcode: str
    price: int
    property_type: PropertyType
    bedrooms: int
    days_on_market: int
    agent: str
    agency: str


class SalesSource(Protocol):
    """Anything that can list a suburb's sales."""

    def sales(
        self, suburb: str, state: AuState, start: date | None = None, end: date | None = None
    ) -> Sequence[Sale]:
        """Sales of ``suburb`` (case-insensitive) in ``state``, oldest first.

        ``start`` and ``end`` are inclusive; ``None`` leaves that side open.
        """
        ...


@runtime_checkable
class SuburbDirectory(Protocol):
    """Optional extra a source may offer: the suburbs it knows, to suggest spellings."""

    def suburbs(self, state: AuState) -> Sequence[str]:
        """Display names of every suburb with sales in ``state``."""
        ...


@runtime_checkable
class DescribedSource(Protocol):
    """Optional extra: how the report's methodology names the data."""

    @property
    def description(self) -> str:
        """E.g. ``"sales export sales.csv"``."""
        ...


def sold_on(sale: Sale) -> date:
    """The sort key of sales in time."""
    return sale.sold_date
