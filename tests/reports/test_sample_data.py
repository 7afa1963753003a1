"""The bundled sample data set: its shape, its coverage, and that it is what the generator makes."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from agentlink.jobs import AuState
from agentlink.reports import sample
from agentlink.reports.sales import COLUMNS

SHIPPED = resources.files("agentlink.reports") / "data" / "sample_sales.csv"
THIN = ("Coral Bay", "WA")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with SHIPPED.open("r", encoding="utf-8") as file:
        return list(csv.DictReader(file))


class TestShape:
    """Every row is well formed, under the documented header."""

    def test_header_is_the_documented_columns_in_order(self) -> None:
        """The first line names exactly the eleven columns, in order."""
        with SHIPPED.open("r", encoding="utf-8") as file:
            assert tuple(next(csv.reader(file))) == COLUMNS

    def test_every_field_has_its_type(self, rows: list[dict[str, str]]) -> None:
        """Dates are ISO, prices whole dollars, postcodes four digits, types known."""
        for row in rows:
            date.fromisoformat(row["sold_date"])
            assert int(row["price"]) > 0
            assert row["property_type"] in {"house", "unit", "townhouse", "land"}
            assert int(row["bedrooms"]) >= 0
            assert 5 <= int(row["days_on_market"]) <= 120
            assert len(row["postcode"]) == 4
            assert row["postcode"].isdigit()
            assert row["address"]
            assert row["agent"]
            assert row["agency"]

    def test_file_stays_small(self) -> None:
        """The packaged CSV stays under 2.5 MB."""
        assert len(SHIPPED.read_bytes()) < 2_500_000


class TestCoverage:
    """Enough suburbs, in every state, over two years, to exercise real reports."""

    def test_at_least_forty_suburbs(self, rows: list[dict[str, str]]) -> None:
        """Forty or more distinct suburb and state pairs."""
        assert len({(row["suburb"], row["state"]) for row in rows}) >= 40

    def test_every_state_and_territory(self, rows: list[dict[str, str]]) -> None:
        """All eight states and territories have sales."""
        assert {row["state"] for row in rows} == {state.value for state in AuState}

    def test_manly_nsw_2095(self, rows: list[dict[str, str]]) -> None:
        """Manly, NSW is present, with its real postcode."""
        postcodes = {
            row["postcode"] for row in rows if (row["suburb"], row["state"]) == ("Manly", "NSW")
        }
        assert postcodes == {"2095"}

    def test_twenty_four_months_ending_31_october_2026(self, rows: list[dict[str, str]]) -> None:
        """Sales run from the first week of November 2024 to 31 October 2026."""
        dates = sorted(date.fromisoformat(row["sold_date"]) for row in rows)
        assert date(2024, 11, 1) <= dates[0] <= date(2024, 11, 7)
        assert dates[-1] == date(2026, 10, 31)

    def test_three_to_eight_agencies_of_two_to_six_agents(self, rows: list[dict[str, str]]) -> None:
        """Each suburb but the thin one has 3-8 agencies, each with 2-6 agents."""
        agencies: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        agents: defaultdict[tuple[str, str, str], set[str]] = defaultdict(set)
        for row in rows:
            if (row["suburb"], row["state"]) == THIN:
                continue
            agencies[row["suburb"], row["state"]].add(row["agency"])
            agents[row["suburb"], row["state"], row["agency"]].add(row["agent"])
        assert all(3 <= len(names) <= 8 for names in agencies.values())
        assert all(2 <= len(names) <= 6 for names in agents.values())

    def test_one_thin_suburb_with_a_single_sale(self, rows: list[dict[str, str]]) -> None:
        """Coral Bay, WA has exactly one sale: reports must cope with thin data."""
        assert sum((row["suburb"], row["state"]) == THIN for row in rows) == 1
        busy: defaultdict[tuple[str, str], int] = defaultdict(int)
        for row in rows:
            busy[row["suburb"], row["state"]] += 1
        assert sorted(busy.values())[:2][1] >= 100  # every other suburb is a real market

    def test_manly_prices_are_plausible(self, rows: list[dict[str, str]]) -> None:
        """Manly houses have a $2.5-3.2m median and units sell for less."""
        manly = [row for row in rows if (row["suburb"], row["state"]) == ("Manly", "NSW")]
        houses = statistics.median(int(r["price"]) for r in manly if r["property_type"] == "house")
        units = statistics.median(int(r["price"]) for r in manly if r["property_type"] == "unit")
        assert 2_500_000 <= houses <= 3_200_000
        assert units < houses

    def test_regional_towns_are_far_cheaper(self, rows: list[dict[str, str]]) -> None:
        """Whyalla's median house costs less than a fifth of Manly's."""

        def house_median(suburb: str) -> float:
            return statistics.median(
                int(r["price"])
                for r in rows
                if r["suburb"] == suburb and r["property_type"] == "house"
            )

        assert house_median("Whyalla") < house_median("Manly") / 5

    def test_a_few_agents_dominate(self, rows: list[dict[str, str]]) -> None:
        """In Manly the top agent has several times the sales of the median agent."""
        counts: defaultdict[str, int] = defaultdict(int)
        for row in rows:
            if (row["suburb"], row["state"]) == ("Manly", "NSW"):
                counts[row["agent"]] += 1
        assert max(counts.values()) >= 3 * statistics.median(counts.values())


class TestDeterminism:
    """The shipped file is exactly what the generator makes, every time."""

    def test_regenerating_gives_the_shipped_bytes(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``python -m agentlink.reports.sample --out`` rewrites the same bytes."""
        out = tmp_path / "sales.csv"
        sample.main(["--out", str(out)])
        assert out.read_bytes() == SHIPPED.read_bytes()
        assert str(out) in capsys.readouterr().out

    def test_another_seed_gives_other_data(self) -> None:
        """The seed drives the data, so the comparison above is meaningful."""
        assert sample.generate_rows(seed=1)[:50] != sample.generate_rows()[:50]
