"""Which errors are retried: only transient ones. A bad date is refused at the edge; an
exception nobody translated (a bug, data the code cannot handle) fails its job at the first
attempt, and the job queued behind it is not held up by back-off."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.jobs import AuState, JobResult, Kind, ReportSpec, entry_fields, period_end_problem
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from consumers.worker import Consumer
from tests.conftest import ROOT, Processes, submit, wait_for, wait_status

AGENTS = "/api/generate-agents-report"
SAMPLE_CSV = ROOT / "agentlink" / "reports" / "data" / "sample_sales.csv"


def post(client: TestClient[Any], **body: Any) -> Any:
    return client.post(AGENTS, json={"suburb": "Manly", "state": "NSW", **body})


class TestPeriodEndAtTheEdge:
    @pytest.mark.parametrize("period_end", ["0001-01-01", "1999-12-31", "2999-01-01"])
    def test_out_of_range_is_422_naming_the_field(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, period_end: str
    ) -> None:
        """Before 2000-01-01 or more than a year ahead: 422 on period_end, nothing queued."""
        response = post(client, period_end=period_end)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == "period_end"
        assert period_end in error["message"]
        assert r.exists(keys.stream) == 0 or r.xlen(keys.stream) == 0

    def test_in_range_is_accepted(self, client: TestClient[Any]) -> None:
        """A date in the data's range is accepted as before."""
        assert post(client, period_end="2025-06-30").status_code == 202

    def test_the_rule(self) -> None:
        """The floor is 2000-01-01; the ceiling a year (366 days) after today."""
        today = date(2026, 1, 15)
        assert period_end_problem(None, today=today) is None
        assert period_end_problem(date(2000, 1, 1), today=today) is None
        assert period_end_problem(date(2027, 1, 16), today=today) is None
        assert "2000-01-01 or later" in (period_end_problem(date(1999, 12, 31), today=today) or "")
        assert "a year ahead" in (period_end_problem(date(2027, 1, 17), today=today) or "")


def queue_entry(r: redis.Redis, keys: Keys, job_id: str, spec: ReportSpec) -> None:
    """XADD an entry as the API would, without its checks (an older API, a hand-made entry)."""
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: the API made it
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
    r.xadd(keys.stream, entry_fields(job_id, spec, datetime.now(UTC).isoformat()))  # type: ignore[arg-type]


def assert_failed_at_once_then_next_completed(
    r: redis.Redis, bad: str, good: str, *, fragment: str
) -> None:
    """The bad job failed at attempt 1 with a clear error, before the good one started."""
    failed = wait_status(r, bad, "failed", "dead", "completed")
    assert failed["status"] == "failed", failed
    assert failed["attempts"] == "1"
    assert fragment in failed["error"]
    assert "not retried" in failed["error"]
    assert '"transient":false' in failed["errors"]
    completed = wait_status(r, good, "completed", "failed", "dead")
    assert completed["status"] == "completed", completed
    assert completed["attempts"] == "1"
    assert failed["finished_at"] <= completed["started_at"]


class TestOnlyTransientErrorsAreRetried:
    def test_an_entry_whose_render_raises_fails_at_once(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """period_end 0001-01-01 (queued past the API) breaks the analysis with ValueError:
        failed at attempt 1, and the job behind it completes."""
        bad_spec = ReportSpec(
            kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW, period_end=date(1, 1, 1)
        )
        queue_entry(r, keys, "bad-date-1", bad_spec)
        good = submit(client)
        # Retries would take many seconds each: a retried job could not finish first.
        consumer = processes.consumer(replace(settings, retry_base_s=30.0, retry_max_s=60.0))
        assert_failed_at_once_then_next_completed(
            r, "bad-date-1", good, fragment="unexpected ValueError"
        )
        log = processes.log("consumer-1")
        assert "report.retrying" not in log
        assert "render.unexpected_error" in log  # with the render's traceback
        assert consumer.poll() is None

    def test_data_that_breaks_the_report_fails_at_once(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        settings: Settings,
        processes: Processes,
        tmp_path: Path,
    ) -> None:
        """A sales file whose only sale of a suburb is dated year 1 (AGENTLINK_SALES_CSV):
        its report fails at attempt 1; the next suburb's report completes."""
        rows = SAMPLE_CSV.read_text().splitlines()
        manly = [row for row in rows if ",Manly,NSW," in row]
        ancient = "0001-06-01,1 Old Road,Ancient,NSW,2000,500000,house,3,20,A Person,Old Realty"
        sales = tmp_path / "sales.csv"
        sales.write_text("\n".join([rows[0], ancient, *manly]) + "\n")
        bad = submit(client, suburb="Ancient")
        good = submit(client)
        slow_retries = replace(settings, retry_base_s=30.0, retry_max_s=60.0)
        processes.consumer(slow_retries, AGENTLINK_SALES_CSV=str(sales))
        assert_failed_at_once_then_next_completed(r, bad, good, fragment="unexpected ValueError")
        assert "report.retrying" not in processes.log("consumer-1")

    def test_a_malformed_sales_file_stops_the_worker_at_start(
        self, settings: Settings, processes: Processes, tmp_path: Path
    ) -> None:
        """A sales file that cannot be parsed is a configuration error: exit 2 naming the
        file and line, no job is failed for it."""
        sales = tmp_path / "broken.csv"
        header = SAMPLE_CSV.read_text().splitlines()[0]
        sales.write_text(f"{header}\nnot-a-date,1 Road,Manly,NSW,2095,1,house,1,1,A,B\n")
        consumer = processes.consumer(settings, AGENTLINK_SALES_CSV=str(sales))
        assert consumer.wait(60) == 2
        log = processes.log("consumer-1")
        assert f"sales file {sales}" in log
        assert "line 2, column sold_date" in log


class KeyErrorStorage:
    """A storage whose save raises an exception no adapter translated (a bug)."""

    name = "buggy"

    def __init__(self) -> None:
        self.calls = 0

    def save(self, relative_path: str, pdf: bytes) -> JobResult:
        self.calls += 1
        raise KeyError("result_path")

    def check(self) -> None:
        """Always usable."""


@pytest.fixture
def buggy_consumer(settings: Settings) -> Iterator[tuple[Consumer, KeyErrorStorage]]:
    """A consumer in a thread of this process, storing through ``KeyErrorStorage``."""
    storage = KeyErrorStorage()
    consumer = Consumer(replace(settings, retry_base_s=30.0, retry_max_s=60.0), storage=storage)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    yield consumer, storage
    consumer.request_stop()
    thread.join(30)
    assert not thread.is_alive()


class TestUnexpectedErrorsInTheConsumer:
    def test_a_bug_outside_the_render_fails_at_once(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        buggy_consumer: tuple[Consumer, KeyErrorStorage],
    ) -> None:
        """A KeyError from storing: failed at attempt 1 naming the type; stored once."""
        _, storage = buggy_consumer
        job_id = submit(client)
        job = wait_status(r, job_id, "failed", "dead", "completed")
        assert job["status"] == "failed"
        assert job["attempts"] == "1"
        assert "unexpected KeyError while making the report (not retried)" in job["error"]
        wait_for(lambda: storage.calls == 1, 5, "one call")
        assert storage.calls == 1
