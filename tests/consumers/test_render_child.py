"""The supervised render child gets the data source and brand settings, and its data
source errors reach the consumer as the classes they are (transient or permanent)."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pypdf
import pytest

from agentlink.errors import (
    ConfigurationError,
    DataSourceRejectedError,
    DataSourceUnavailableError,
)
from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.report_settings import BrandSettings, DataSettings
from agentlink.settings import Settings
from consumers.render_child import Renderer
from tests.support.sales_endpoint import Endpoint, record


@pytest.fixture
def renderer(endpoint: str) -> Iterator[Renderer]:
    data = DataSettings(kind="http", location=f"{endpoint}/sales?suburb={{suburb}}&state={{state}}")
    settings = Settings()
    child = Renderer(
        data=data,
        brand=BrandSettings(name="Bayside Agency"),
        timeout_s=120,
        max_jobs=settings.render_max_jobs,
        max_rss_bytes=settings.render_max_rss_mb * 1024 * 1024,
    )
    yield child
    child.kill()


class TestRenderChild:
    """One child, three answers from the endpoint."""

    def test_settings_and_error_classes_cross_the_process_boundary(
        self, renderer: Renderer
    ) -> None:
        """503 -> transient, 404 -> permanent, records -> a report in the brand's name."""
        spec = ReportSpec(kind=Kind.AGENTS, suburb="St Kilda", state=AuState.VIC)
        now = datetime.now(UTC)
        Endpoint.reply = (503, b"{}")
        with pytest.raises(DataSourceUnavailableError, match="answered 503"):
            renderer.render(spec, job_id="c-1", generated_at=now)
        Endpoint.reply = (404, b"no such suburb")
        with pytest.raises(DataSourceRejectedError, match=r"answered 404 .*no such suburb"):
            renderer.render(spec, job_id="c-2", generated_at=now)
        Endpoint.reply = (200, json.dumps([record(), record(agent="Bo Yu")]).encode())
        report = renderer.render(spec, job_id="c-3", generated_at=now)
        text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(report.pdf)).pages)
        assert "Prepared by Bayside Agency" in text
        assert "Sales records from 127.0.0.1" in text


SAMPLE_CSV = (
    Path(__file__).resolve().parents[2] / "agentlink" / "reports" / "data" / "sample_sales.csv"
)


def manly_csv(path: Path) -> None:
    """A sales file with the sample's Manly rows."""
    rows = SAMPLE_CSV.read_text().splitlines()
    path.write_text("\n".join([rows[0], *(row for row in rows if ",Manly,NSW," in row)]) + "\n")


@pytest.fixture
def recycling(tmp_path: Path) -> Iterator[tuple[Renderer, Path]]:
    """A renderer of a CSV file whose child is recycled after every report."""
    sales = tmp_path / "sales.csv"
    manly_csv(sales)
    child = Renderer(
        data=DataSettings(kind="csv", location=str(sales)),
        timeout_s=120,
        max_jobs=1,
        max_rss_bytes=Settings().render_max_rss_mb * 1024 * 1024,
    )
    yield child, sales
    child.kill()


class TestRestartedChild:
    """A new child meets the sales file as it is at that moment."""

    def test_a_file_it_cannot_read_is_transient_and_bad_rows_are_permanent(
        self, recycling: tuple[Renderer, Path]
    ) -> None:
        """Recycled after a report: file gone -> DataSourceUnavailableError (retried), rows
        that fail validation -> DataSourceRejectedError naming the line; fixed -> renders."""
        renderer, sales = recycling
        spec = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW)
        now = datetime.now(UTC)
        renderer.render(spec, job_id="r-1", generated_at=now)
        sales.unlink()
        with pytest.raises(DataSourceUnavailableError, match="cannot read the sales file"):
            renderer.render(spec, job_id="r-2", generated_at=now)
        header = SAMPLE_CSV.read_text().splitlines()[0]
        sales.write_text(f"{header}\nnot-a-date,1 Road,Manly,NSW,2095,1,house,1,1,A,B\n")
        with pytest.raises(DataSourceRejectedError, match="line 2, column sold_date"):
            renderer.render(spec, job_id="r-3", generated_at=now)
        manly_csv(sales)
        assert renderer.render(spec, job_id="r-4", generated_at=now).pages > 0

    def test_at_start_either_is_a_configuration_error(
        self, recycling: tuple[Renderer, Path]
    ) -> None:
        """Before the first job a worker refuses to start on a file it cannot read."""
        renderer, sales = recycling
        sales.unlink()
        with pytest.raises(ConfigurationError, match="cannot read the sales file"):
            renderer.start()


def own_children() -> set[int]:
    """Every child process of this one, zombies included (not reaped yet)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


class TestStartFailure:
    def test_a_child_whose_settings_cannot_be_sent_is_reaped(self) -> None:
        """Sending the settings fails (here: they do not pickle): the new child is killed
        and waited for, not left behind blocked on its socket."""
        before = own_children()
        renderer = Renderer(
            brand=BrandSettings(name=threading.Lock()),  # type: ignore[arg-type]
            timeout_s=120,
            max_jobs=1,
            max_rss_bytes=Settings().render_max_rss_mb * 1024 * 1024,
        )
        with pytest.raises(TypeError, match="pickle"):
            renderer.start()
        assert own_children() == before
        assert renderer.rss_bytes() == 0
