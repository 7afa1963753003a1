"""``agentlink data check``: what the configured source holds, or the problem, by exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentlink.cli import main
from tests.conftest import ROOT

HEADER = (
    "sold_date,address,suburb,state,postcode,price,property_type,bedrooms,days_on_market,"
    "agent,agency\n"
)


def check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, **env: str
) -> tuple[int, str]:
    for name in ("AGENTLINK_DATA", "AGENTLINK_SALES_CSV", "AGENTLINK_DATA_COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["data", "check", *args])
    return code, capsys.readouterr().out


class TestDataCheck:
    """Exit 0 with a summary, or 1 naming the problem."""

    def test_sample(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The bundled data: rows, date range, suburbs per state."""
        code, out = check(monkeypatch, capsys)
        assert code == 0
        assert "source   sample: the AgentLink sample data set" in out
        assert "rows     20,641 sales, 1 November 2024 to 31 October 2026" in out
        assert "suburbs  60 in 8 states" in out
        assert "Coral Bay" in out
        assert out.rstrip().endswith("ok: reports can use this data")

    def test_one_suburb(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--suburb and --state add that suburb's summary."""
        code, out = check(monkeypatch, capsys, "--suburb", "coral bay", "--state", "wa")
        assert code == 0
        assert "suburb   Coral Bay, WA 6701: 1 sale, " in out
        assert "1 agent at 1 agency" in out

    def test_csv_with_mapping(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A mapped export is read through AGENTLINK_DATA_COLUMNS."""
        path = tmp_path / "export.csv"
        path.write_text(
            HEADER.replace("price", "Sale Price")
            + '2026-03-01,1 A St,Manly,NSW,2095,"$900,000",house,3,20,Ann Lee,Bluegum\n'
        )
        code, out = check(
            monkeypatch,
            capsys,
            AGENTLINK_DATA=f"csv:{path}",
            AGENTLINK_DATA_COLUMNS="price=Sale Price",
        )
        assert code == 0
        assert "rows     1 sale, 1 March 2026 to 1 March 2026" in out
        assert "suburbs  1 in 1 state" in out

    def test_bad_row_is_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 1 with the line and column."""
        path = tmp_path / "bad.csv"
        path.write_text(
            HEADER + "2026-03-01,1 A St,Manly,NSW,2095,lots,house,3,20,Ann Lee,Bluegum\n"
        )
        code, out = check(monkeypatch, capsys, AGENTLINK_SALES_CSV=str(path))
        assert code == 1
        assert "FAIL: sales file" in out
        assert "line 2, column price: 'lots'" in out

    def test_bad_setting_is_named(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A malformed AGENTLINK_DATA is exit 1 too."""
        code, out = check(monkeypatch, capsys, AGENTLINK_DATA="ftp://x")
        assert code == 1
        assert "FAIL: AGENTLINK_DATA='ftp://x'" in out

    def test_http_needs_a_suburb(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An endpoint cannot be listed: the check asks for --suburb and --state."""
        code, out = check(
            monkeypatch,
            capsys,
            AGENTLINK_DATA="https://crm.example/s?suburb={suburb}&state={state}",
        )
        assert code == 1
        assert "pass --suburb and --state" in out

    def test_bad_state(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown state is named with the valid ones."""
        code, out = check(monkeypatch, capsys, "--suburb", "Manly", "--state", "XX")
        assert code == 1
        assert "--state must be one of NSW" in out

    def test_only_a_bad_state_is_blamed_on_the_state(self, tmp_path: Path) -> None:
        """A ValueError that is not about --state (here: a suburb name the terminal cannot
        encode) is not reported as a bad --state."""
        path = tmp_path / "export.csv"
        path.write_text(
            HEADER + "2026-03-01,1 A St,Pâquerette,NSW,2095,900000,house,3,20,Ann Lee,Bluegum\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "agentlink", "data", "check"],
            env={**os.environ, "AGENTLINK_SALES_CSV": str(path), "PYTHONIOENCODING": "ascii"},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode != 0
        assert "--state must be one of" not in done.stdout + done.stderr
        assert "UnicodeEncodeError" in done.stderr
