"""Sales from a CSV file: the bundled sample, or an agency's own export.

Exports come from spreadsheets and CRMs, so the reader is forgiving about form and strict
about meaning: headers are matched case-insensitively in any order (extra columns are
ignored, differently named ones are mapped with ``AGENTLINK_DATA_COLUMNS``), prices may be
written ``$1,250,000``, dates ISO or day/month/year; but every value is checked, and a bad
one is reported with its line and column, so the operator can fix the file.

The file is parsed once per process and indexed by suburb. Every query compares the
file's modification time and size with the parsed version's and re-reads a changed file,
so a new export is picked up without restarting the workers. A changed file that fails to
parse (for instance half-copied) does not take reports down: the last good version keeps
serving, and the failure is logged once per version of the file.
"""

from __future__ import annotations

import bisect
import csv
import functools
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from importlib.resources.abc import Traversable
from pathlib import Path

import structlog

from agentlink.errors import DataSourceRejectedError, DataSourceUnavailableError
from agentlink.jobs import AuState
from agentlink.reports.sales import COLUMNS, PropertyType, Sale, sold_on

log = structlog.get_logger(__name__)

_MAX_LISTED_ERRORS = 5
_TYPE_WORDS = {
    "house": PropertyType.HOUSE,
    "unit": PropertyType.UNIT,
    "apartment": PropertyType.UNIT,
    "flat": PropertyType.UNIT,
    "townhouse": PropertyType.TOWNHOUSE,
    "land": PropertyType.LAND,
    "vacant land": PropertyType.LAND,
}
_Key = tuple[str, AuState]
_Version = tuple[int, int]  # (mtime_ns, size); (0, 0) for a packaged resource


@dataclass(frozen=True, slots=True)
class CsvContents:
    """One parsed version of the file."""

    by_suburb: Mapping[_Key, tuple[Sale, ...]]
    rows: int
    first: date | None
    last: date | None
    version: _Version

    @property
    def modified(self) -> datetime | None:
        """When the parsed version of the file was written (None for a packaged file)."""
        return datetime.fromtimestamp(self.version[0] / 1e9, UTC) if self.version[0] else None


class CsvSalesSource:
    """Sales read from a CSV file with the columns of ``COLUMNS`` (see the module doc)."""

    __slots__ = ("_columns", "_contents", "_failed", "_label", "_path")

    def __init__(
        self,
        path: str | os.PathLike[str] | Traversable,
        *,
        columns: Iterable[tuple[str, str]] = (),
        label: str = "",
    ) -> None:
        self._path: Traversable = path if isinstance(path, Traversable) else Path(path)
        self._columns = tuple(columns)
        self._label = label
        self._contents: CsvContents | None = None
        self._failed: _Version | None = None

    def __repr__(self) -> str:
        return f"CsvSalesSource({str(self._path)!r})"

    def __reduce__(self) -> tuple[object, tuple[str, tuple[tuple[str, str], ...], str]]:
        # Sent to a render process as its settings alone; there it resolves to the
        # process's shared, already-parsed source instead of re-reading the file per job.
        return (shared_csv_source, (str(self._path), self._columns, self._label))

    @property
    def path(self) -> str:
        """The file read."""
        return str(self._path)

    @property
    def description(self) -> str:
        """How the methodology names this data: the label, or the file's name."""
        return self._label or f"sales export {self._path.name}"

    def load(self) -> CsvContents:
        """Parse the file now (or return the parsed version if the file is unchanged).

        ``DataSourceRejectedError`` lists invalid values by line and column;
        ``DataSourceUnavailableError`` says the file cannot be read.
        """
        return self._current()

    def sales(
        self, suburb: str, state: AuState, start: date | None = None, end: date | None = None
    ) -> Sequence[Sale]:
        """Sales of ``suburb`` (case-insensitive) in ``state``, oldest first, dates inclusive."""
        key = (" ".join(suburb.split()).casefold(), AuState(state))
        found = self._current().by_suburb.get(key, ())
        lo = 0 if start is None else bisect.bisect_left(found, start, key=sold_on)
        hi = len(found) if end is None else bisect.bisect_right(found, end, key=sold_on)
        return found[lo:hi]

    def suburbs(self, state: AuState) -> Sequence[str]:
        """Display names of every suburb with sales in ``state``, sorted."""
        by_suburb = self._current().by_suburb
        return sorted(sales[-1].suburb for (_, st), sales in by_suburb.items() if st == state)

    def _current(self) -> CsvContents:
        version = self._version()
        last_good = self._contents
        if last_good is not None and version in (last_good.version, self._failed):
            return last_good
        try:
            contents = self._parse(version)
        except (DataSourceRejectedError, DataSourceUnavailableError) as exc:
            if last_good is None:
                raise
            self._failed, problem = version, str(exc)
        else:
            if last_good is not None:
                log.info("sales_source.reloaded", path=str(self._path), rows=contents.rows)
            self._contents, self._failed = contents, None
            return contents
        log.error("sales_source.reload_failed", path=str(self._path), error=problem)
        return last_good

    def _version(self) -> _Version:
        if not isinstance(self._path, Path):
            return (0, 0)  # a packaged resource does not change under a running process
        try:
            stat = self._path.stat()
        except OSError as exc:
            if self._contents is not None:
                return self._contents.version  # gone for a moment (replaced): keep serving
            raise DataSourceUnavailableError(
                f"cannot read the sales file {self._path}: {exc.strerror or exc}"
            ) from exc
        return (stat.st_mtime_ns, stat.st_size)

    def _parse(self, version: _Version) -> CsvContents:
        grouped: dict[_Key, list[Sale]] = {}
        rows = 0
        for sale in self._read():
            grouped.setdefault((sale.suburb.casefold(), sale.state), []).append(sale)
            rows += 1
        by_suburb = {key: tuple(sorted(sales, key=sold_on)) for key, sales in grouped.items()}
        days = [sales[0].sold_date for sales in by_suburb.values()]
        lasts = [sales[-1].sold_date for sales in by_suburb.values()]
        return CsvContents(
            by_suburb=by_suburb,
            rows=rows,
            first=min(days, default=None),
            last=max(lasts, default=None),
            version=version,
        )

    def _read(self) -> Iterator[Sale]:
        problems: list[str] = []
        invalid = 0
        try:
            # utf-8-sig: spreadsheet exports often start with a byte-order mark.
            with io.TextIOWrapper(self._path.open("rb"), encoding="utf-8-sig", newline="") as file:
                reader = csv.reader(file)
                positions = self._positions(next(reader, None))
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    try:
                        yield _sale(row, positions)
                    except _CellError as exc:
                        invalid += 1
                        if len(problems) < _MAX_LISTED_ERRORS:
                            problems.append(f"line {reader.line_num}, {self._name(exc)}")
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            if isinstance(exc, OSError):
                raise DataSourceUnavailableError(
                    f"cannot read the sales file {self._path}: {exc.strerror or exc}"
                ) from exc
            raise DataSourceRejectedError(
                f"sales file {self._path} is not UTF-8 CSV: {exc}"
            ) from exc
        if invalid:
            more = f"; and {invalid - len(problems)} more" if invalid > len(problems) else ""
            noun = "row" if invalid == 1 else "rows"
            raise DataSourceRejectedError(
                f"sales file {self._path}: {invalid} invalid {noun}: {'; '.join(problems)}{more}"
            )

    def _positions(self, header: list[str] | None) -> tuple[int, ...]:
        if header is None:
            raise DataSourceRejectedError(f"sales file {self._path} is empty (no header row)")
        found = {cell.strip().casefold(): i for i, cell in reversed(list(enumerate(header)))}
        mapped = dict(self._columns)
        positions, missing = [], []
        for column in COLUMNS:
            wanted = mapped.get(column, column)
            if wanted.casefold() in found:
                positions.append(found[wanted.casefold()])
            else:
                missing.append(column if wanted == column else f"{column} (as {wanted!r})")
        if missing:
            raise DataSourceRejectedError(
                f"sales file {self._path}: line 1: the header lacks {', '.join(missing)}; "
                "map differently named columns with AGENTLINK_DATA_COLUMNS "
                "(e.g. price=Sale Price)"
            )
        return tuple(positions)

    def _name(self, error: _CellError) -> str:
        theirs = dict(self._columns).get(error.column)
        column = f"column {error.column}" + (f" ({theirs!r})" if theirs else "")
        return f"{column}: {error}"


class _CellError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


def _sale(row: list[str], positions: tuple[int, ...]) -> Sale:
    cells = [row[i].strip() if i < len(row) else "" for i in positions]
    sold, address, suburb, state, postcode, price, kind, beds, dom, agent, agency = cells
    return Sale(
        sold_date=_date(sold),
        address=_text("address", address),
        suburb=_text("suburb", suburb),
        state=_state(state),
        postcode=_postcode(postcode),
        price=_price(price),
        property_type=_property_type(kind),
        bedrooms=_count("bedrooms", beds, blank=0),
        days_on_market=_count("days_on_market", dom),
        agent=_text("agent", agent),
        agency=_text("agency", agency),
    )


def _date(value: str) -> date:
    try:
        if "/" in value:
            day, month, year = (int(part) for part in value.split("/"))
            return date(year, month, day)
        # Database exports may append a time ("2026-03-01 00:00:00"); the day is what counts.
        return date.fromisoformat(value[:10] if len(value) > 10 else value)
    except ValueError:
        raise _CellError("sold_date", f"{value!r} is not a date (2026-03-01 or 1/3/2026)") from None


def _text(column: str, value: str) -> str:
    if not value:
        raise _CellError(column, "is empty")
    return " ".join(value.split())


def _state(value: str) -> AuState:
    try:
        return AuState(value.upper())
    except ValueError:
        states = ", ".join(AuState)
        raise _CellError("state", f"{value!r} is not one of {states}") from None


def _postcode(value: str) -> str:
    # Spreadsheets drop the leading zero of NT postcodes (0800 -> 800).
    if value.isdigit() and len(value) in (3, 4):
        return value.zfill(4)
    raise _CellError("postcode", f"{value!r} is not a four-digit postcode")


def _price(value: str) -> int:
    cleaned = value.removeprefix("A").removeprefix("$").replace(",", "").replace(" ", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount <= 0 or amount != amount.to_integral_value():
        raise _CellError(
            "price", f"{value!r} is not a price in whole dollars (1250000 or $1,250,000)"
        )
    return int(amount)


def _property_type(value: str) -> PropertyType:
    found = _TYPE_WORDS.get(" ".join(value.split()).casefold())
    if found is None:
        raise _CellError(
            "property_type", f"{value!r} is not house, unit (apartment), townhouse or land"
        )
    return found


def _count(column: str, value: str, *, blank: int | None = None) -> int:
    if not value and blank is not None:
        return blank
    if not value.isdigit():
        raise _CellError(column, f"{value!r} is not a whole number of 0 or more")
    return int(value)


@functools.cache
def shared_csv_source(
    path: str, columns: tuple[tuple[str, str], ...] = (), label: str = ""
) -> CsvSalesSource:
    """The process-wide ``CsvSalesSource`` of these settings, parsed at most once per version."""
    return CsvSalesSource(path, columns=columns, label=label)
