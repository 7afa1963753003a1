"""A real consumer process after known work: its own metrics port, what the API reads about
it from Redis, the jobs' timelines and the consumer's log lines.

One run serves the whole module (a consumer takes seconds to start): five entries with
known fates — two reports completed, one failed (no sales), one dead after its attempts
(its folder cannot be written), one malformed entry dead at once.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from litestar.testing import TestClient
from prometheus_client import generate_latest

from agentlink.admin.devredis import RedisServer, free_port
from agentlink.api import create_app
from agentlink.errors import RenderFailedError
from agentlink.jobs import AuState, JobEvent, Kind, ReportSpec
from agentlink.settings import Settings
from agentlink.stream.connection import connect
from agentlink.stream.group import GroupMember
from agentlink.stream.keys import Keys
from consumers import metrics
from consumers.lease import Checkpoint, LeaseKeeper
from consumers.render_child import RenderAbortedError, Renderer
from tests.conftest import Processes, submit, wait_for, wait_status
from tests.support.consumers import stalled_consumer
from tests.support.metrics import MIB, names, parse, scrape, value
from tests.support.settings import quick_settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Run:
    """The finished run: clients, the consumer's metrics URL and the jobs by fate."""

    client: TestClient[Any]
    r: redis.Redis
    processes: Processes
    metrics_url: str
    jobs: dict[str, str]

    def consumer_metrics(self) -> Samples:
        """The consumer's own exposition, parsed."""
        response = httpx.get(self.metrics_url, timeout=5)
        assert response.status_code == 200
        return parse(response.text)

    def record(self, name: str) -> dict[str, Any]:
        """The status record of one of the jobs."""
        response = self.client.get(f"/api/job-status/{self.jobs[name]}")
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result


def finished(samples: Samples) -> float:
    """Jobs the consumer counted, whatever their kind and outcome."""
    return sum(v for (n, _), v in samples.items() if n == "agentlink_jobs_total")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Start Redis, the API (in process) and one consumer; put the five entries through."""
    tmp = tmp_path_factory.mktemp("metrics-consumer")
    server = RedisServer(tmp / "redis")
    server.start()
    settings = quick_settings(server.url, tmp, "test", max_attempts=2, log_format="json")
    # A file where the VIC folder should be: every VIC upload fails, transiently.
    (settings.output_dir / "VIC").parent.mkdir(parents=True)
    (settings.output_dir / "VIC").write_text("not a folder")
    processes = Processes(tmp)
    r = redis.Redis.from_url(server.url, decode_responses=True)
    keys = Keys()
    port = free_port()
    try:
        with TestClient(app=create_app(settings)) as client:
            jobs = {
                "completed": submit(client, "Manly", "NSW", "agents"),
                "agency": submit(client, "Manly", "NSW", "agency"),
                "failed": submit(client, "Nowhere", "NSW", "agents"),
                "dead": submit(client, "Fitzroy", "VIC", "agents"),
            }
            # The consumer logs the request id its job record carries (whoever set it).
            r.hset(keys.job(jobs["completed"]), "request_id", "req-agents-1")
            r.xadd(keys.stream, {"job_id": "malformed-1", "v": "99"})
            processes.consumer(settings, AGENTLINK_METRICS_PORT=str(port))
            url = f"http://127.0.0.1:{port}/metrics"
            done = Run(client, r, processes, url, jobs)

            def all_counted() -> bool:
                try:
                    return finished(done.consumer_metrics()) == 5
                except httpx.HTTPError:
                    return False

            wait_for(all_counted, 60, "the consumer to count five finished jobs")
            yield done
    finally:
        processes.stop_all()
        r.close()
        server.stop()


class TestConsumerExposition:
    def test_jobs_counted_by_kind_and_outcome(self, run: Run) -> None:
        """Each entry's fate is counted once, under its kind and outcome."""
        samples = run.consumer_metrics()
        jobs = "agentlink_jobs_total"
        assert value(samples, jobs, kind="agents", outcome="completed") == 1
        assert value(samples, jobs, kind="agency", outcome="completed") == 1
        assert value(samples, jobs, kind="agents", outcome="failed") == 1
        assert value(samples, jobs, kind="agents", outcome="dead") == 1
        assert value(samples, jobs, kind="unknown", outcome="dead") == 1

    def test_timings_observed_per_step(self, run: Run) -> None:
        """Queue wait once per job that started; renders per attempt; uploads that stored."""
        samples = run.consumer_metrics()
        assert value(samples, "agentlink_queue_wait_seconds_count") == 4
        # Manly agents once, Fitzroy agents twice (two attempts), Nowhere never (no data).
        assert value(samples, "agentlink_render_seconds_count", kind="agents") == 3
        assert value(samples, "agentlink_render_seconds_count", kind="agency") == 1
        assert value(samples, "agentlink_upload_seconds_count", storage="local") == 2
        assert value(samples, "agentlink_job_seconds_count", kind="agents") == 1
        assert value(samples, "agentlink_job_seconds_count", kind="agency") == 1
        assert value(samples, "agentlink_render_seconds_sum", kind="agency") > 0

    def test_dead_letters_and_retries_by_reason(self, run: Run) -> None:
        """One dead letter for attempts, one for a malformed entry, one retry before."""
        samples = run.consumer_metrics()
        assert value(samples, "agentlink_dead_letters_total", reason="attempts") == 1
        assert value(samples, "agentlink_dead_letters_total", reason="malformed") == 1
        assert value(samples, "agentlink_retries_total", kind="agents") == 1
        assert value(samples, "agentlink_reclaimed_total") == 0
        assert "agentlink_renders_killed_total" not in names(samples)

    def test_busy_flag_memory_and_identity(self, run: Run) -> None:
        """Idle now; the consumer's and its render child's memory; its consumer name."""
        samples = run.consumer_metrics()
        assert value(samples, "agentlink_consumer_busy") == 0
        assert value(samples, "agentlink_storage_paused") == 0
        assert value(samples, "agentlink_resident_memory_bytes", process="consumer") > 20 * MIB
        assert value(samples, "agentlink_resident_memory_bytes", process="render") > 20 * MIB
        assert value(samples, "agentlink_consumer_info", consumer="test-1") == 1
        assert value(samples, "process_resident_memory_bytes") > 20 * MIB
        assert "agentlink_http_requests_total" not in names(samples)


class TestApiSeesTheConsumer:
    def test_stream_gauges_after_the_run(self, run: Run) -> None:
        """Nothing waits; one live idle consumer; the two dead letters."""
        samples = scrape(run.client)
        assert value(samples, "agentlink_stream_lag") == 0
        assert value(samples, "agentlink_stream_pending") == 0
        assert value(samples, "agentlink_dlq_length") == 2
        assert value(samples, "agentlink_consumers_live") == 1
        assert value(samples, "agentlink_consumers_busy") == 0
        assert value(samples, "agentlink_estimated_wait_seconds") == 0

    def test_service_time_and_memory_budget_from_the_consumer(self, run: Run) -> None:
        """Busy seconds per finished job (4 jobs reached an outcome with a lease held) and
        the worker's measured footprint, which the heartbeat carries."""
        work = run.r.hgetall("agentlink:stats:work")
        assert work["done"] == "4"

        def with_memory() -> Samples | None:
            samples = scrape(run.client)
            return samples if "agentlink_worker_memory_peak_bytes" in names(samples) else None

        samples = wait_for(with_memory, 10, "a heartbeat with memory figures")
        service = value(samples, "agentlink_service_time_seconds")
        assert service == pytest.approx(float(work["busy_s"]) / 4, rel=0.01)
        assert 0 < service < 30
        heartbeat = run.r.hgetall("agentlink:consumer:test-1")
        assert int(heartbeat["rss"]) > 20 * MIB
        assert int(heartbeat["render_peak_rss"]) >= int(heartbeat["render_rss"]) > 0
        peak = value(samples, "agentlink_worker_memory_peak_bytes")
        assert peak >= int(heartbeat["rss"]) + int(heartbeat["render_rss"]) - 5 * MIB
        assert value(samples, "agentlink_workers_memory_fit") >= 1


def steps(record: dict[str, Any]) -> list[str]:
    """The job's event names, renewals left out (their number depends on timing)."""
    return [event["event"] for event in record["events"] if event["event"] != "renewed"]


class TestTimeline:
    def test_completed_job(self, run: Run) -> None:
        """accepted, claimed by the consumer, rendered, uploaded, completed."""
        record = run.record("completed")
        assert steps(record) == ["accepted", "claimed", "rendered", "uploaded", "completed"]
        events = {event["event"]: event for event in record["events"]}
        assert events["accepted"]["at"] == record["created_at"]
        assert events["claimed"]["consumer"] == "test-1"
        assert events["claimed"]["attempt"] == 1
        assert events["claimed"]["deliveries"] == 1
        assert events["rendered"]["seconds"] > 0
        assert events["uploaded"]["detail"] == "local"
        assert events["completed"]["at"] == record["finished_at"]
        times = [event["at"] for event in record["events"]]
        assert times == sorted(times)

    def test_retried_then_dead_job(self, run: Run) -> None:
        """Each attempt, the retry with its error and delay, and the dead letter."""
        record = run.record("dead")
        assert steps(record) == [
            "accepted",
            "claimed",
            "rendered",
            "retrying",
            "claimed",
            "rendered",
            "dead",
        ]
        retrying = next(e for e in record["events"] if e["event"] == "retrying")
        assert retrying["attempt"] == 1
        assert "cannot write" in retrying["detail"]
        assert 0 < retrying["seconds"] <= 0.2
        assert [e["attempt"] for e in record["events"] if e["event"] == "claimed"] == [1, 2]
        assert "gave up after 2 attempts" in record["events"][-1]["detail"]

    def test_failed_job(self, run: Run) -> None:
        """A permanent error ends the timeline at once."""
        record = run.record("failed")
        assert steps(record) == ["accepted", "claimed", "failed"]
        assert record["events"][-1]["detail"] == record["error"]

    def test_timeline_lives_in_the_job_hash(self, run: Run) -> None:
        """Stored in the job's own hash, so it expires with it."""
        key = Keys().job(run.jobs["completed"])
        stored = json.loads(run.r.hget(key, "events") or "[]")
        assert [e["event"] for e in stored if e["event"] != "renewed"] == steps(
            run.record("completed")
        )[1:]
        assert run.r.ttl(key) > 0


class TestConsumerLogs:
    def test_report_lines_carry_job_request_consumer_and_attempt(self, run: Run) -> None:
        """Every report.* line of the job has its job id, request id, consumer and attempt."""
        lines = [
            json.loads(line)
            for line in run.processes.log("consumer-1").splitlines()
            if line.startswith("{")
        ]
        job_lines = [
            line
            for line in lines
            if line.get("job_id") == run.jobs["completed"] and line["event"].startswith("report.")
        ]
        assert [line["event"] for line in job_lines] == [
            "report.claimed",
            "report.rendered",
            "report.uploaded",
            "report.completed",
        ]
        for line in job_lines:
            assert line["request_id"] == "req-agents-1"
            assert line["consumer"] == "test-1"
            assert line["attempt"] == 1
        # The request id does not leak into the next job's lines.
        other = [line for line in lines if line.get("job_id") == run.jobs["agency"]]
        assert other
        assert all(line.get("request_id") != "req-agents-1" for line in other)


class TestReclaimOnTheRecord:
    def test_reclaimed_job_shows_both_consumers_and_the_renewals(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """A consumer killed -9 mid-render: its renewals fold into one event, the other
        consumer's reclaim is counted on its port and written on the timeline."""
        first, _ = stalled_consumer(processes, settings, slot=1)
        job_id = submit(client)
        wait_status(r, job_id, "processing")

        def renewals() -> int:
            record = client.get(f"/api/job-status/{job_id}").json()
            return sum(e.get("count", 1) for e in record["events"] if e["event"] == "renewed")

        wait_for(lambda: renewals() >= 2, 15, "two lease renewals")
        port = free_port()  # slot 2 serves on AGENTLINK_METRICS_PORT + 1
        processes.consumer(settings, slot=2, AGENTLINK_METRICS_PORT=str(port - 1))
        first.kill()
        first.wait(10)
        wait_status(r, job_id, "completed")
        record = client.get(f"/api/job-status/{job_id}").json()
        events = record["events"]
        assert [(e["event"], e.get("consumer")) for e in events if e["event"] != "renewed"] == [
            ("accepted", None),
            ("claimed", "test-1"),
            ("reclaimed", "test-2"),
            ("claimed", "test-2"),
            ("rendered", "test-2"),
            ("uploaded", "test-2"),
            ("completed", "test-2"),
        ]
        renewed = [e for e in events if e["event"] == "renewed"]
        assert renewed[0]["consumer"] == "test-1"
        assert renewed[0]["count"] >= 2
        reclaimed = next(e for e in events if e["event"] == "reclaimed")
        assert reclaimed["deliveries"] == 2
        assert [e["attempt"] for e in events if e["event"] == "claimed"] == [1, 2]
        samples = parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        assert value(samples, "agentlink_reclaimed_total") == 1
        assert value(samples, "agentlink_jobs_total", kind="agents", outcome="completed") == 1


class TestRenderChildMetrics:
    def test_recycles_and_kills_are_counted_by_reason(self) -> None:
        """A child recycled after its job quota, one killed past the timeout, one abandoned."""

        def count(name: str, **labels: str) -> float:
            samples = parse(generate_latest(metrics.CONSUMER_REGISTRY).decode())
            return samples.get((name, frozenset(labels.items())), 0.0)

        spec = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW)
        now = datetime.now(UTC)
        before = {
            "jobs": count("agentlink_render_recycles_total", reason="jobs"),
            "timeout": count("agentlink_renders_killed_total", reason="timeout"),
            "abandoned": count("agentlink_renders_killed_total", reason="abandoned"),
        }
        # A real first render in a fresh child takes 1-2 s on a busy machine: 60 s for it;
        # the stopped child below never answers, so 1 s is enough to kill it.
        renderer = Renderer(
            sales_csv=None,
            timeout_s=60.0,
            max_jobs=1,
            max_rss_bytes=Settings().render_max_rss_mb * MIB,
        )
        try:
            assert renderer.render(spec, job_id="m-1", generated_at=now).pages >= 3
            assert renderer.rss_bytes() == 0  # recycled after its one job
            current, peak = renderer.memory()
            assert current == 0
            assert peak > 20 * MIB
            renderer.start()
            os.kill(renderer._process.pid, signal.SIGSTOP)
            renderer.timeout_s = 1.0
            with pytest.raises(RenderFailedError, match="render killed after 1 s"):
                renderer.render(spec, job_id="m-2", generated_at=now)
            with pytest.raises(RenderAbortedError):
                renderer.render(spec, job_id="m-3", generated_at=now, should_abort=lambda: True)
        finally:
            renderer.kill()
        assert count("agentlink_render_recycles_total", reason="jobs") == before["jobs"] + 1
        assert count("agentlink_renders_killed_total", reason="timeout") == before["timeout"] + 1
        assert (
            count("agentlink_renders_killed_total", reason="abandoned") == before["abandoned"] + 1
        )


class TestLeaseMetrics:
    def test_a_lease_taken_over_is_counted_once(self, r: redis.Redis, redis_url: str) -> None:
        """When another consumer owns our entry, the lease is lost, and counted, once."""

        def lost() -> float:
            samples = parse(generate_latest(metrics.CONSUMER_REGISTRY).decode())
            return samples.get(("agentlink_leases_lost_total", frozenset()), 0.0)

        keys = Keys()
        member = GroupMember(connect(redis_url), keys, "test-a")
        member.ensure_group()
        entry_id = r.xadd(keys.stream, {"job_id": "j-1", "v": "1"})
        r.xreadgroup(keys.group, "test-a", {keys.stream: ">"}, count=1)
        lease = LeaseKeeper(member, lease_s=3.0, report_jobs=True)
        lease.hold(str(entry_id), "j-1", fresh=False)
        before = lost()
        rendered = JobEvent(event="rendered", at="now", consumer="test-a")
        assert lease.checkpoint(rendered) is Checkpoint.OWNED
        r.xclaim(keys.stream, keys.group, "test-b", 0, [entry_id])
        assert lease.renew() is Checkpoint.LOST
        assert lease.checkpoint(rendered) is Checkpoint.LOST
        assert lost() == before + 1
        lease.release()
