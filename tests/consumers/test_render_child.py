"""The supervised render child gets the data source and brand settings, and its data
source errors reach the consumer as the classes they are (transient or permanent)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pypdf
import pytest

from agentlink.errors import DataSourceRejectedError, DataSourceUnavailableError
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
