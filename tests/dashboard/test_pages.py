"""The dashboard's pages over real Redis: the queue and its workers, the charts from the
history hashes, the job list (status filter, search by id, prefix or suburb, pages), a
job's page, and the pages of dead letters and dead callbacks."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.dashboard.history import Bucket, chart
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import job_hash
from tests.support.dashboard import BEARER, TENANT_KEY, bury, dashboard_settings

_ROWS = re.compile(r'<tr data-job="([^"]+)"')


@pytest.fixture
def ops(settings: Settings) -> Iterator[TestClient[Any]]:
    """The API with the dashboard open to the test's operator key (as Bearer)."""
    with TestClient(app=create_app(dashboard_settings(settings))) as client:
        client.headers.update(BEARER)
        yield client


def submit(client: TestClient[Any], suburb: str = "Manly", state: str = "NSW", **extra: Any) -> str:
    answer = client.post(
        "/api/generate-agents-report",
        json={"suburb": suburb, "state": state, **extra},
        headers={"X-API-Key": TENANT_KEY, "Authorization": ""},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


def rows(client: TestClient[Any], **params: Any) -> list[str]:
    """The job ids the job list shows, in order."""
    answer = client.get("/dashboard", params={"part": "jobs", **params})
    assert answer.status_code == 200, answer.text
    return _ROWS.findall(answer.text)


class TestQueue:
    def test_the_numbers_and_the_workers(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Backlog, lag and dead letters as Redis has them; a live consumer's job and suburb."""
        waiting = [submit(ops) for _ in range(3)]
        busy = submit(ops, "Bondi")
        r.zadd(keys.consumers, {"web-1-1": time.time()})
        r.hset(
            keys.consumer("web-1-1"),
            mapping={"state": "busy", "job": busy, "job_since": f"{time.time() - 75:.3f}"},
        )
        part = ops.get("/dashboard", params={"part": "queue"}).text
        backlog = re.search(r"<dt>Backlog</dt><dd>(\d+)</dd>", part)
        assert backlog
        assert backlog.group(1) == str(len(waiting) + 1)
        assert f'href="/dashboard/jobs/{busy}"' in part
        assert "Bondi, NSW" in part
        assert "1 min 15 s" in part or "1 min 16 s" in part
        assert "web-1-1" in part


class TestCharts:
    def test_the_history_hashes_make_the_charts(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Counts written by the scripts (here: 2 accepted, 1 cancelled) appear in both charts."""
        job_id = submit(ops)
        submit(ops, "Bondi")
        ops.post(
            f"/api/jobs/{job_id}/cancel", headers={"X-API-Key": TENANT_KEY, "Authorization": ""}
        )
        part = ops.get("/dashboard", params={"part": "charts"}).text
        expected = "2 accepted, 0 completed, 0 failed, 0 dead, 1 cancelled."
        assert part.count(expected) == 2  # the hour and the 24 hours

    def test_bars_stack_outcomes_to_scale(self) -> None:
        """The tallest bucket fills the plot; segments are proportional to their counts."""
        quiet = Bucket({"accepted": 1, "completed": 1})
        busy = Bucket({"accepted": 10, "completed": 6, "failed": 1, "dead": 1, "cancelled": 2})
        drawn = chart("t", "test", [quiet, busy], [(0, "−2 min"), (1, "now")])
        completed, failures, cancelled = drawn.bars[1].segments
        assert (completed.count, failures.count, cancelled.count) == (6, 2, 2)
        assert completed.height == pytest.approx(3 * failures.height)
        assert drawn.ticks[0][1] == 10  # the nice maximum, at the top
        assert drawn.totals["accepted"] == 11
        assert drawn.bars[0].segments[0].height == pytest.approx(completed.height / 6)


class TestJobList:
    def test_newest_first_in_pages_with_the_count(
        self, ops: TestClient[Any], r: redis.Redis
    ) -> None:
        """Pages of 25 by creation time, newest first: the first page holds the 25 newest,
        the next goes on, each job once (jobs created in the same millisecond may come in
        either order)."""
        made = [submit(ops) for _ in range(30)]
        first = rows(ops)
        second = rows(ops, start=25)
        created = {job_id: job_hash(r, job_id)["created_at"] for job_id in made}
        assert sorted(first + second) == sorted(made)
        shown = [created[job_id] for job_id in first + second]
        assert shown == sorted(created.values(), reverse=True)
        page = ops.get("/dashboard", params={"part": "jobs"}).text
        assert "1–25 of 30" in page
        assert "start=25" in page

    def test_status_filter(self, ops: TestClient[Any]) -> None:
        """Only the jobs of the status asked for."""
        kept = submit(ops)
        cancelled = submit(ops)
        ops.post(f"/dashboard/jobs/{cancelled}/cancel", data={"confirm": "yes"})
        assert rows(ops, status="cancelled") == [cancelled]
        assert rows(ops, status="queued") == [kept]
        assert ops.get("/dashboard", params={"status": "nonsense"}).status_code == 400

    def test_search_by_id_prefix_and_full_id(self, ops: TestClient[Any]) -> None:
        """An 8-character prefix or the whole id finds the job."""
        job_id = submit(ops)
        submit(ops)
        assert rows(ops, q=job_id[:8]) == [job_id]
        assert rows(ops, q=job_id.upper()) == [job_id]

    def test_search_by_suburb(self, ops: TestClient[Any]) -> None:
        """A suburb's name (any case, state optional) lists its jobs; a prefix several
        suburbs share offers them as choices."""
        manly = submit(ops, "Manly")
        vale = submit(ops, "Manly Vale")
        submit(ops, "Bondi")
        assert rows(ops, q="manly") == [manly]
        assert rows(ops, q="Manly Vale, NSW") == [vale]
        choices = ops.get("/dashboard", params={"part": "jobs", "q": "man"}).text
        assert "Several suburbs match" in choices
        assert "Manly Vale, NSW" in choices

    def test_search_with_a_status_filter(self, ops: TestClient[Any]) -> None:
        """A suburb's jobs of one status, read from the suburb's index."""
        first = submit(ops, "Manly")
        second = submit(ops, "Manly")
        submit(ops, "Bondi")
        ops.post(f"/dashboard/jobs/{first}/cancel", data={"confirm": "yes"})
        assert rows(ops, q="manly", status="cancelled") == [first]
        assert rows(ops, q="manly", status="queued") == [second]

    def test_an_expired_job_is_skipped(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A job whose hash expired, still in the indexes, is left out."""
        gone = submit(ops)
        kept = submit(ops)
        r.delete(keys.job(gone))
        assert rows(ops) == [kept]
        assert rows(ops, q=gone[:8]) == []


class TestJobPage:
    def test_record_timeline_and_actions(self, ops: TestClient[Any], r: redis.Redis) -> None:
        """A queued job: its record and timeline, and a way to cancel it; its 8-character
        prefix leads to it."""
        job_id = submit(ops, highlight="Jane Citizen")
        page = ops.get(f"/dashboard/jobs/{job_id}")
        assert page.status_code == 200
        assert job_id in page.text
        assert "highlight Jane Citizen" in page.text
        assert f'href="/dashboard/jobs/{job_id}/cancel"' in page.text
        assert "accepted" in page.text
        by_prefix = ops.get(f"/dashboard/jobs/{job_id[:8]}", follow_redirects=False)
        assert by_prefix.headers["location"] == f"/dashboard/jobs/{job_id}"
        missing = ops.get("/dashboard/jobs/no-such-job")
        assert missing.status_code == 404
        assert "text/html" in missing.headers["content-type"]

    def test_a_dead_job_shows_its_errors_and_its_letter(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """The error history, the dead letter to replay, and re-run as a new job."""
        job_id = submit(ops)
        dead_id = bury(r, keys, job_id)
        page = ops.get(f"/dashboard/jobs/{job_id}").text
        assert "storage answered 503" in page
        assert f"/dashboard/dead/{dead_id}/replay" in page
        assert f"/dashboard/jobs/{job_id}/rerun" in page
        assert job_hash(r, job_id)["status"] == "dead"

    def test_what_jobs_and_workers_wrote_is_escaped(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Error texts (a storage's or a data source's words) and highlight names are shown
        as text on every page that prints them, never as markup."""
        job_id = submit(ops, highlight="<img src=x onerror=alert(1)>")
        bury(r, keys, job_id, error="<script>alert('dl')</script>")
        pages = [
            ops.get(f"/dashboard/jobs/{job_id}").text,
            ops.get("/dashboard/dead").text,
            ops.get("/dashboard").text,
        ]
        for page in pages:
            assert "<script>alert" not in page
            assert "<img src=x" not in page
        assert "&lt;script&gt;alert(" in pages[0]
        assert "&lt;script&gt;alert(" in pages[1]
        assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0]


class TestLetters:
    def test_dead_letters_page_newest_first(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Pages of 25 dead letters, newest first, with their history; Older then Newer."""
        made = [submit(ops) for _ in range(27)]
        dead = [bury(r, keys, job_id) for job_id in made]
        first = ops.get("/dashboard/dead").text
        assert "27 dead letter(s)" in first
        assert dead[-1] in first
        assert dead[1] not in first
        assert "1 failed attempt(s)" in first
        older = ops.get("/dashboard/dead", params={"before": dead[2]}).text
        assert dead[1] in older
        assert dead[0] in older
        assert dead[2] not in older
        newer = ops.get("/dashboard/dead", params={"after": dead[1]}).text
        assert dead[2] in newer
        assert dead[26] in newer
        assert dead[1] not in newer

    def test_dead_callbacks_show_the_host_not_the_url(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A dead callback: job, status, host and error; the secret URL path never."""
        r.xadd(
            keys.callbacks.dead,
            {
                "job_id": "job-9",
                "status": "completed",
                "url": "https://hook.eu1.make.com/s3cretpath",
                "attempt": "10",
                "record": "{}",
                "delivery": "1-0",
                "error": "gave up after 10 attempts: receiver answered 500",
                "dead_at": "2026-11-30T10:00:00.000+00:00",
            },
        )
        page = ops.get("/dashboard/callbacks").text
        assert "hook.eu1.make.com" in page
        assert "s3cretpath" not in page
        assert "receiver answered 500" in page
