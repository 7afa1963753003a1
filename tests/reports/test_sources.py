"""Sales sources: a CSV export (forgiving about form, strict about values, reloaded when it
changes) and an HTTP JSON endpoint (a real local server; errors classified for retries)."""

from __future__ import annotations

import json
import os
import pickle
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agentlink.errors import (
    DataSourceRejectedError,
    DataSourceUnavailableError,
    PermanentJobError,
    TransientJobError,
)
from agentlink.jobs import AuState
from agentlink.report_settings import DataSettings
from agentlink.reports import CsvSalesSource, HttpSalesSource, open_source, sample_source
from agentlink.reports.sales import PropertyType
from tests.support.sales_endpoint import Endpoint, record

HEADER = (
    "sold_date,address,suburb,state,postcode,price,property_type,bedrooms,days_on_market,"
    "agent,agency\n"
)
ROW = "2026-03-01,1 High Street,Manly,NSW,2095,{price},house,3,20,Ann Lee,Bluegum\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


class TestCsvColumns:
    """Headers in any order and case, extra columns, mapped names."""

    def test_any_order_extra_columns_and_case(self, tmp_path: Path) -> None:
        """Columns are found by name; "Notes" is ignored; "PRICE" matches price."""
        path = write(
            tmp_path / "s.csv",
            "Notes,agency,agent,days_on_market,bedrooms,property_type,PRICE,postcode,state,suburb,address,sold_date\n"
            "hi,Bluegum,Ann Lee,20,3,house,900000,2095,NSW,Manly,1 High Street,2026-03-01\n",
        )
        [sale] = CsvSalesSource(path).sales("Manly", AuState.NSW)
        assert (sale.price, sale.agent, sale.agency, sale.sold_date) == (
            900000, "Ann Lee", "Bluegum", date(2026, 3, 1),
        )  # fmt: skip

    def test_mapping_renames_columns(self, tmp_path: Path) -> None:
        """AGENTLINK_DATA_COLUMNS-style pairs map our column to the export's header."""
        path = write(
            tmp_path / "s.csv",
            HEADER.replace("price", "Sale Price").replace("sold_date", "Date")
            + ROW.format(price=5),
        )
        source = CsvSalesSource(path, columns=[("price", "Sale Price"), ("sold_date", "Date")])
        assert [s.price for s in source.sales("manly", AuState.NSW)] == [5]

    def test_missing_columns_are_named(self, tmp_path: Path) -> None:
        """A header without price and agency says so, on line 1, with the mapping hint."""
        path = write(tmp_path / "s.csv", HEADER.replace(",price", "").replace(",agency", "") + "\n")
        with pytest.raises(
            DataSourceRejectedError, match=r"line 1: the header lacks price, agency; map"
        ):
            CsvSalesSource(path).load()

    def test_missing_mapped_column_names_the_mapping(self, tmp_path: Path) -> None:
        """A mapped header that is not there is reported as mapped."""
        path = write(tmp_path / "s.csv", HEADER + ROW.format(price=1))
        with pytest.raises(DataSourceRejectedError, match=re.escape("price (as 'Sale Price')")):
            CsvSalesSource(path, columns=[("price", "Sale Price")]).load()


class TestCsvValues:
    """Values as exports write them are accepted; wrong ones are named by line and column."""

    @pytest.mark.parametrize(
        ("written", "price"),
        [
            ("$1,250,000", 1250000),
            ("1250000", 1250000),
            ("1,250,000.00", 1250000),
            ("A$ 950,000", 950000),
        ],
    )
    def test_prices(self, tmp_path: Path, written: str, price: int) -> None:
        """Dollar signs, thousands separators and zero cents are fine."""
        path = write(tmp_path / "s.csv", HEADER + ROW.format(price=f'"{written}"'))
        assert [s.price for s in CsvSalesSource(path).sales("Manly", AuState.NSW)] == [price]

    def test_australian_dates_types_and_short_postcodes(self, tmp_path: Path) -> None:
        """1/3/2026 is 1 March; "Apartment" is a unit; postcode 800 is 0800; blank beds are 0."""
        path = write(
            tmp_path / "s.csv",
            HEADER
            + "1/3/2026,1 Cavenagh St,Darwin City,nt,800,500000,Apartment,,30,Jo Tan,Top End\n",
        )
        [sale] = CsvSalesSource(path).sales("Darwin City", AuState.NT)
        assert (sale.sold_date, sale.property_type, sale.postcode, sale.bedrooms) == (
            date(2026, 3, 1), PropertyType.UNIT, "0800", 0,
        )  # fmt: skip

    def test_bad_values_name_line_and_column(self, tmp_path: Path) -> None:
        """Every bad row is counted; the first five are listed by line and column."""
        rows = "".join(ROW.format(price=p) for p in ("100", "lots", "0", "12.50"))
        rows += "2026-13-01,1 High Street,Manly,NSW,2095,5,house,3,20,Ann Lee,Bluegum\n"
        rows += "2026-03-01,,Manly,XX,20,5,castle,x,-1,Ann Lee,Bluegum\n"
        path = write(tmp_path / "s.csv", HEADER + rows)
        with pytest.raises(DataSourceRejectedError) as caught:
            CsvSalesSource(path, columns=[("price", "price")]).load()
        message = str(caught.value)
        assert message.startswith(f"sales file {path}: 5 invalid rows: ")
        assert "line 3, column price ('price'): 'lots' is not a price in whole dollars" in message
        assert "line 4, column price ('price'): '0' is not a price" in message
        assert "line 5, column price ('price'): '12.50' is not a price" in message
        assert "line 6, column sold_date: '2026-13-01' is not a date" in message
        assert "line 7, column address: is empty" in message
        assert isinstance(caught.value, PermanentJobError)

    def test_more_than_five_bad_rows_are_counted(self, tmp_path: Path) -> None:
        """Past five, the message says how many more."""
        path = write(tmp_path / "s.csv", HEADER + ROW.format(price="x") * 8)
        with pytest.raises(DataSourceRejectedError, match=r"8 invalid rows: .*; and 3 more$"):
            CsvSalesSource(path).load()

    def test_byte_order_mark_and_blank_lines(self, tmp_path: Path) -> None:
        """A UTF-8 BOM (Excel) and empty lines are fine."""
        path = tmp_path / "s.csv"
        path.write_bytes(b"\xef\xbb\xbf" + (HEADER + ROW.format(price=7) + ",,,\n\n").encode())
        assert [s.price for s in CsvSalesSource(path).sales("Manly", AuState.NSW)] == [7]

    def test_bounds_inclusive_and_suburb_case_insensitive(self, tmp_path: Path) -> None:
        """Dates equal to start or end are included; "MANLY" finds "Manly"."""
        source = CsvSalesSource(write(tmp_path / "s.csv", HEADER + ROW.format(price=1)))
        day = date(2026, 3, 1)
        assert len(source.sales("  MANLY ", AuState.NSW, day, day)) == 1
        assert source.sales("Manly", AuState.NSW, date(2026, 3, 2)) == ()
        assert source.sales("Manly", AuState.VIC) == ()


class TestCsvReload:
    """Parsed once per version of the file; a new export is picked up, a broken one is not."""

    def test_parsed_once_while_unchanged(self, tmp_path: Path) -> None:
        """Two queries of an unchanged file share one parse."""
        source = CsvSalesSource(write(tmp_path / "s.csv", HEADER + ROW.format(price=1)))
        assert source.load() is source.load()

    def test_changed_file_is_reloaded(self, tmp_path: Path) -> None:
        """A rewritten file (new size and time) is read again."""
        path = write(tmp_path / "s.csv", HEADER + ROW.format(price=1))
        source = CsvSalesSource(path)
        assert len(source.sales("Manly", AuState.NSW)) == 1
        write(path, HEADER + ROW.format(price=1) + ROW.format(price=2))
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        with capture_logs() as logs:
            assert [s.price for s in source.sales("Manly", AuState.NSW)] == [1, 2]
        assert [e["event"] for e in logs] == ["sales_source.reloaded"]

    def test_broken_new_version_keeps_the_last_good_one(self, tmp_path: Path) -> None:
        """A half-written export is logged once, and reports go on with the previous data."""
        path = write(tmp_path / "s.csv", HEADER + ROW.format(price=1))
        source = CsvSalesSource(path)
        source.load()
        write(path, HEADER + ROW.format(price="oops") + "2026")
        with capture_logs() as logs:
            assert [s.price for s in source.sales("Manly", AuState.NSW)] == [1]
            assert [s.price for s in source.sales("Manly", AuState.NSW)] == [1]
        assert [e["event"] for e in logs] == ["sales_source.reload_failed"]
        assert "line 2, column price" in logs[0]["error"]

    def test_missing_file_is_transient(self, tmp_path: Path) -> None:
        """No file (yet) may be a deployment in progress: a retryable error naming it."""
        with pytest.raises(
            DataSourceUnavailableError, match=re.escape(str(tmp_path / "nope.csv"))
        ) as caught:
            CsvSalesSource(tmp_path / "nope.csv").sales("Manly", AuState.NSW)
        assert isinstance(caught.value, TransientJobError)

    def test_pickles_to_the_shared_instance(self) -> None:
        """A render process gets the process-wide parsed source, not a fresh copy."""
        assert pickle.loads(pickle.dumps(sample_source())) is sample_source()

    def test_open_source_for_csv_settings(self, tmp_path: Path) -> None:
        """AGENTLINK_DATA=csv:… gives the shared CSV source with its mapping and label."""
        path = write(tmp_path / "s.csv", HEADER.replace("price", "Amount") + ROW.format(price=3))
        data = DataSettings(
            kind="csv", location=str(path), columns=(("price", "Amount"),), label="CRM export"
        )
        source = open_source(data)
        assert source is open_source(data)
        assert [s.price for s in source.sales("Manly", AuState.NSW)] == [3]
        assert isinstance(source, CsvSalesSource)
        assert source.description == "CRM export"


# -- HTTP ----------------------------------------------------------------------------------


def source_at(base: str, path: str = "/sales", **kwargs: Any) -> HttpSalesSource:
    kwargs.setdefault("timeout_s", DataSettings().timeout_s)
    return HttpSalesSource(
        f"{base}{path}?suburb={{suburb}}&state={{state}}&from={{start}}", **kwargs
    )


class TestHttpGood:
    """Valid answers, in both shapes, filtered to what was asked."""

    def test_array_answer_with_quoted_placeholders_and_auth(self, endpoint: str) -> None:
        """The suburb is URL-encoded; the auth header is sent; extra fields are ignored."""
        Endpoint.reply = (
            200,
            json.dumps([record(), record(price=1_000_000, sold_date="2026-01-05")]).encode(),
        )
        source = source_at(endpoint, auth_header=("Authorization", "Bearer s3cret"))
        sales = source.sales("st  kilda", AuState.VIC, start=date(2026, 1, 1))
        assert [(s.sold_date, s.price) for s in sales] == [
            (date(2026, 1, 5), 1_000_000),
            (date(2026, 3, 1), 900_000),
        ]
        path, headers = Endpoint.seen[0]
        assert path == "/sales?suburb=st%20kilda&state=VIC&from=2026-01-01"
        assert headers["Authorization"] == "Bearer s3cret"

    def test_object_answer_and_filtering(self, endpoint: str) -> None:
        """{"sales": [...]} works; other suburbs and dates out of range are dropped."""
        body = {"sales": [record(), record(suburb="Elsewhere"), record(sold_date="2025-01-01")]}
        Endpoint.reply = (200, json.dumps(body).encode())
        sales = source_at(endpoint).sales(
            "St Kilda", AuState.VIC, start=date(2026, 1, 1), end=date(2026, 12, 31)
        )
        assert len(sales) == 1

    def test_pickled_source_fetches_too(self, endpoint: str) -> None:
        """A render child gets the settings and opens its own connection."""
        Endpoint.reply = (200, json.dumps([record()]).encode())
        copy = pickle.loads(pickle.dumps(source_at(endpoint, auth_header=("X-Key", "k"))))
        assert len(copy.sales("St Kilda", AuState.VIC)) == 1
        assert Endpoint.seen[0][1]["X-Key"] == "k"


class TestHttpRedirects:
    """Redirects are followed within the endpoint's origin only, where the auth header may go."""

    def test_same_origin_redirect_is_followed_with_the_header(self, endpoint: str) -> None:
        """/moved/sales answers 302 to /sales on the same server: followed, header and all."""
        Endpoint.reply = (200, json.dumps([record()]).encode())
        source = source_at(endpoint, path="/moved/sales", auth_header=("X-Key", "k"))
        assert len(source.sales("St Kilda", AuState.VIC)) == 1
        [(first, _), (then, headers)] = Endpoint.seen
        assert (first.split("?")[0], then.split("?")[0]) == ("/moved/sales", "/sales")
        assert headers["X-Key"] == "k"

    def test_cross_origin_redirect_is_refused(self, endpoint: str, other_endpoint: str) -> None:
        """A 302 to another port is a permanent error; the other server is never asked, so
        the header (and the query) never reach it."""
        Endpoint.moved_to = other_endpoint
        Endpoint.reply = (200, json.dumps([record()]).encode())
        source = source_at(endpoint, path="/moved/sales", auth_header=("X-Key", "s3cret"))
        with pytest.raises(DataSourceRejectedError) as caught:
            source.sales("St Kilda", AuState.VIC)
        assert [headers["Host"] for _, headers in Endpoint.seen] == [endpoint.split("//")[1]]
        message = str(caught.value)
        assert f"redirected to {other_endpoint}, another origin" in message
        assert "s3cret" not in message
        assert "suburb=" not in message

    def test_endless_redirects_are_refused(self, endpoint: str) -> None:
        """A redirect loop within the origin ends with a permanent error."""
        Endpoint.moved_to = "/moved"
        with pytest.raises(DataSourceRejectedError, match="redirected more than 5 times"):
            source_at(endpoint, path="/moved/sales").sales("St Kilda", AuState.VIC)


class TestHttpErrors:
    """Transient: network, timeout, 5xx, 429. Permanent: other 4xx, bad payloads."""

    @pytest.mark.parametrize("status", [500, 502, 503, 429])
    def test_server_trouble_is_transient(self, endpoint: str, status: int) -> None:
        """The job will be retried."""
        Endpoint.reply = (status, b"{}")
        with pytest.raises(
            DataSourceUnavailableError, match=f"answered {status} .* for St Kilda, VIC$"
        ):
            source_at(endpoint).sales("St Kilda", AuState.VIC)

    @pytest.mark.parametrize(
        ("status", "hint"), [(404, ""), (400, ""), (401, " (check AGENTLINK_DATA_AUTH_HEADER)")]
    )
    def test_client_errors_are_permanent(self, endpoint: str, status: int, hint: str) -> None:
        """The job fails with the status, the body's start and, for 401, a hint."""
        Endpoint.reply = (status, b'{"error": "no such suburb"}')
        with pytest.raises(DataSourceRejectedError) as caught:
            source_at(endpoint).sales("St Kilda", AuState.VIC)
        assert f"answered {status} " in str(caught.value)
        assert f'for St Kilda, VIC{hint}: {{"error": "no such suburb"}}' in str(caught.value)

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (b"<html>oops</html>", "malformed"),
            (json.dumps([record(price="900k")]).encode(), "$[0].price"),
            (json.dumps({"sales": [record(state="XX")]}).encode(), "$.sales[0].state"),
            (json.dumps([record(agent="")]).encode(), "$[0].agent"),
        ],
    )
    def test_invalid_payload_is_permanent(self, endpoint: str, body: bytes, detail: str) -> None:
        """msgspec's message names the field at fault."""
        Endpoint.reply = (200, body)
        with pytest.raises(
            DataSourceRejectedError, match="sent invalid sales data for St Kilda, VIC: "
        ) as caught:
            source_at(endpoint).sales("St Kilda", AuState.VIC)
        assert detail.lower() in str(caught.value).lower()

    def test_timeout_is_transient(self, endpoint: str) -> None:
        """An endpoint slower than AGENTLINK_DATA_TIMEOUT_S is retried later."""
        with pytest.raises(DataSourceUnavailableError, match=r"did not answer within 0.5 s"):
            source_at(endpoint, path="/slow", timeout_s=0.5).sales("St Kilda", AuState.VIC)

    def test_refused_connection_is_transient(self, endpoint: str) -> None:
        """Nothing listening: retried later; the message names host and path, not the query."""
        dead = HttpSalesSource(
            "http://127.0.0.1:9/sales?key=SECRET&suburb={suburb}&state={state}", timeout_s=10.0
        )
        with pytest.raises(
            DataSourceUnavailableError, match=r"cannot reach the sales endpoint 127.0.0.1/sales"
        ) as caught:
            dead.sales("St Kilda", AuState.VIC)
        assert "SECRET" not in str(caught.value)
