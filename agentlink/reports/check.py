"""``agentlink data check``: open the configured sales source and say what it holds.

An operator pointing AgentLink at a new export runs this before the workers do: it
validates every row of a CSV (or one suburb's answer from an HTTP endpoint) with the same
code the reports use, and prints the rows, the date range and the suburbs it found, or
the problem, by line and column. It imports no WeasyPrint, so it starts quickly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from agentlink.errors import AgentLinkError
from agentlink.jobs import AuState
from agentlink.report_settings import DataSettings
from agentlink.reports.csv_source import CsvSalesSource
from agentlink.reports.format import count, long_date
from agentlink.reports.sales import Sale
from agentlink.reports.sources import describe, open_source


class DataCheckError(AgentLinkError):
    """The source cannot be checked as asked (an HTTP source needs a suburb)."""


def check_lines(
    data: DataSettings, suburb: str | None = None, state: AuState | None = None
) -> Iterator[str]:
    """What the source holds, line by line; raises the source's error when it is invalid."""
    source = open_source(data)
    # The kind, not the URL: a query string may carry a key.
    yield f"source   {data.kind}: {describe(source)}"
    if isinstance(source, CsvSalesSource):
        contents = source.load()
        modified = contents.modified
        when = f", written {modified:%Y-%m-%d %H:%M} UTC" if modified else ""
        yield f"file     {source.path}{when}"
        span = (
            f", {long_date(contents.first)} to {long_date(contents.last)}"
            if contents.first and contents.last
            else ""
        )
        yield f"rows     {count(contents.rows, 'sale')}{span}"
        per_state = {st: source.suburbs(st) for st in AuState}
        known = {st: names for st, names in per_state.items() if names}
        total = sum(len(names) for names in known.values())
        yield f"suburbs  {total:,} in {len(known)} state{'s' if len(known) != 1 else ''}"
        for st, names in known.items():
            yield f"  {st.value:<4}{len(names):>4}  {', '.join(names)}"
    elif suburb is None or state is None:
        raise DataCheckError(
            "an HTTP source is checked one suburb at a time: pass --suburb and --state"
        )
    if suburb is not None and state is not None:
        yield from _suburb_lines(source.sales(suburb, state), suburb, state)


def _suburb_lines(sales: Sequence[Sale], suburb: str, state: AuState) -> Iterator[str]:
    if not sales:
        yield f"suburb   {suburb}, {state.value}: no sales recorded"
        return
    agencies = Counter(sale.agency for sale in sales)
    agents = {(sale.agent, sale.agency) for sale in sales}
    yield (
        f"suburb   {sales[-1].suburb}, {state.value} {sales[-1].postcode}: {len(sales):,} "
        f"sale{'s' if len(sales) != 1 else ''}, {long_date(sales[0].sold_date)} to "
        f"{long_date(sales[-1].sold_date)}, {len(agents)} agent{'s' if len(agents) != 1 else ''} "
        f"at {len(agencies)} agenc{'ies' if len(agencies) != 1 else 'y'}"
    )
