"""The figure tests' renders, made once for the package: each case is a whole PDF."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlink.reports import CsvSalesSource, sample_source
from tests.support import recount as rc
from tests.support.figures import (
    COLUMNS,
    SAMPLE_CASES,
    SHIPPED,
    TRAP_CASES,
    TRAP_CSV,
    Case,
    Rendered,
    render,
)


@pytest.fixture(scope="package")
def sample_rows() -> list[rc.Row]:
    return rc.read_rows(str(SHIPPED))


@pytest.fixture(scope="package")
def trap_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[rc.Row]]:
    folder = tmp_path_factory.mktemp("traps")
    path = folder / "export.csv"
    path.write_text(TRAP_CSV)
    plain = folder / "plain.csv"  # the same rows under the documented headers, for the recount
    _, *body = TRAP_CSV.splitlines()
    plain.write_text(
        "sold_date,address,suburb,state,postcode,price,property_type,bedrooms,days_on_market,"
        "agent,agency,n\n" + "\n".join(body) + "\n"
    )
    return path, rc.read_rows(plain)


@pytest.fixture(
    scope="package", params=SAMPLE_CASES + TRAP_CASES, ids=lambda c: f"{c.kind.value}-{c.suburb}"
)
def rendered(
    request: pytest.FixtureRequest,
    sample_rows: list[rc.Row],
    trap_rows: tuple[Path, list[rc.Row]],
) -> Rendered:
    case: Case = request.param
    if case.suburb == "Testville":
        path, rows = trap_rows
        return render(case, CsvSalesSource(path, columns=COLUMNS), rows)
    return render(case, sample_source(), sample_rows)
