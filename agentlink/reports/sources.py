"""Where sales come from: the ``SalesSource`` protocol and its CSV implementation.

Reports only ever ask one question of their data ("the sales of this suburb in this
period"), so a source is a single method and operators can swap the bundled sample for
their own CSV export or an HTTP endpoint. ``CsvSalesSource`` parses its file once and
indexes it by suburb, so a consumer making many reports pays for the parse only once.
"""

from __future__ import annotations

import bisect
import csv
import enum
import functools
import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agentlink.errors import ConfigurationError
from agentlink.jobs import AuState

COLUMNS = (
    "sold_date",
    "address",
    "suburb",
    "state",
    "postcode",
    "price",
    "property_type",
    "bedrooms",
    "days_on_market",
    "agent",
    "agency",
)


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


_Key = tuple[str, AuState]


class CsvSalesSource:
    """Sales read from a CSV file with the sample data set's columns.

    The file is parsed on first use. A missing or malformed file raises
    ``ConfigurationError`` naming the file and the line, so a worker can call ``load()``
    at start-up and refuse to run rather than fail every job.
    """

    __slots__ = ("_by_suburb", "_path")

    def __init__(self, path: str | os.PathLike[str] | Traversable) -> None:
        self._path: Traversable = path if isinstance(path, Traversable) else Path(path)
        self._by_suburb: dict[_Key, tuple[Sale, ...]] | None = None

    def __repr__(self) -> str:
        return f"CsvSalesSource({str(self._path)!r})"

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # Sent to a render process as its path alone; there it resolves to the process's
        # shared, already-parsed source instead of re-reading the file for every job.
        return (shared_csv_source, (str(self._path),))

    def load(self) -> None:
        """Parse the file now (it is otherwise parsed on the first query)."""
        self._index()

    def sales(
        self, suburb: str, state: AuState, start: date | None = None, end: date | None = None
    ) -> Sequence[Sale]:
        """Sales of ``suburb`` (case-insensitive) in ``state``, oldest first, dates inclusive."""
        found = self._index().get((suburb.strip().casefold(), AuState(state)), ())
        lo = 0 if start is None else bisect.bisect_left(found, start, key=_sold)
        hi = len(found) if end is None else bisect.bisect_right(found, end, key=_sold)
        return found[lo:hi]

    def suburbs(self, state: AuState) -> Sequence[str]:
        """Display names of every suburb with sales in ``state``, sorted."""
        return sorted(sales[0].suburb for (_, st), sales in self._index().items() if st == state)

    def _index(self) -> dict[_Key, tuple[Sale, ...]]:
        if self._by_suburb is None:
            grouped: dict[_Key, list[Sale]] = {}
            for sale in self._parse():
                grouped.setdefault((sale.suburb.casefold(), sale.state), []).append(sale)
            self._by_suburb = {
                key: tuple(sorted(sales, key=_sold)) for key, sales in grouped.items()
            }
        return self._by_suburb

    def _parse(self) -> Iterator[Sale]:
        try:
            # utf-8-sig: spreadsheet exports often start with a byte-order mark.
            binary = self._path.open("rb")
            with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as file:
                reader = csv.reader(file)
                header = next(reader, None)
                if header is None or tuple(h.strip() for h in header) != COLUMNS:
                    raise ConfigurationError(
                        f"{self._path}: line 1: expected the header {','.join(COLUMNS)}"
                    )
                for row in reader:
                    if row:
                        yield self._sale(row, reader.line_num)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigurationError(f"cannot read sales file {self._path}: {exc}") from exc

    def _sale(self, row: list[str], line: int) -> Sale:
        if len(row) != len(COLUMNS):
            raise ConfigurationError(
                f"{self._path}: line {line}: expected {len(COLUMNS)} fields, got {len(row)}"
            )
        values: list[Any] = []
        for column, parse, field in zip(COLUMNS, _PARSERS, row, strict=True):
            try:
                values.append(parse(field.strip()))
            except ValueError as exc:
                raise ConfigurationError(
                    f"{self._path}: line {line}: {column} {field!r}: {exc}"
                ) from exc
        return Sale(*values)


def _sold(sale: Sale) -> date:
    return sale.sold_date


def _text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _price(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number of dollars")
    return number


_PARSERS: tuple[Callable[[str], Any], ...] = (
    date.fromisoformat, _text, _text, AuState, _text, _price, PropertyType, _count, _count,
    _text, _text,
)  # fmt: skip


@functools.cache
def shared_csv_source(path: str) -> CsvSalesSource:
    """The process-wide ``CsvSalesSource`` of ``path``, parsed at most once per process."""
    return CsvSalesSource(path)


def sample_source() -> CsvSalesSource:
    """The bundled sample data set (fictional agents, real suburbs), shared per process."""
    return shared_csv_source(
        str(resources.files("agentlink.reports") / "data" / "sample_sales.csv")
    )
