"""Consumer processes: a job's life through the stream, failures, graceful shutdown."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import redis
from litestar.testing import TestClient

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from consumers.worker import Consumer
from tests.conftest import Processes, job_hash, settings_env, submit, wait_for, wait_status
from tests.support.injected import HeldRenderer


def pdfs(settings: Settings) -> list[Path]:
    """Every PDF below the output folder."""
    return sorted(settings.output_dir.rglob("*.pdf"))


class TestJobLife:
    def test_queued_processing_completed_and_acked(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """A job goes queued -> processing -> completed; the entry is acked; the PDF is stored."""
        job_id = submit(client)
        assert job_hash(r, job_id)["status"] == "queued"
        processes.consumer(settings)
        seen = wait_status(r, job_id, "processing", "completed")
        job = wait_status(r, job_id, "completed")
        assert seen["status"] in {"processing", "completed"}
        assert job["attempts"] == "1"
        assert job["consumer"] == "test-1"
        assert job["started_at"] <= job["finished_at"]
        assert job["result_storage"] == "local"
        assert job["result_path"].startswith("NSW/Manly/agents-Manly-")
        assert job["result_path"].endswith(f"-{job_id[:8]}.pdf")
        pdf = settings.output_dir / job["result_path"]
        assert pdf.read_bytes().startswith(b"%PDF")
        assert int(job["result_bytes"]) == pdf.stat().st_size
        assert int(job["result_pages"]) >= 3
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        assert r.hlen(keys.index) == 0
        assert 0 < r.ttl(keys.job(job_id)) <= settings.job_ttl_s
        events = [
            json.loads(line)
            for line in processes.log("consumer-1").splitlines()
            if line.startswith("{")
        ]
        steps = [e for e in events if e["event"].startswith("report.")]
        assert [e["event"] for e in steps] == [
            "report.claimed",
            "report.rendered",
            "report.uploaded",
            "report.completed",
        ]
        for event in steps:
            assert event["job_id"] == job_id
            assert event["consumer"] == "test-1"
            assert event["attempt"] == 1
            assert event["entry_id"]

    def test_status_endpoint_and_pdf_download(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """Once completed, the status record has the result and the PDF endpoint serves it."""
        job_id = submit(client, kind="agency")
        processes.consumer(settings)
        wait_status(r, job_id, "completed")
        record = client.get(f"/api/job-status/{job_id}").json()
        assert record["status"] == "completed"
        assert record["result"]["url"].endswith(f"/api/jobs/{job_id}/pdf")
        response = client.get(f"/api/jobs/{job_id}/pdf")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        assert len(response.content) == record["result"]["bytes"]

    def test_suburb_without_data_fails_at_once(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """A suburb with no sales ends failed with a clear error, acked, not retried."""
        job_id = submit(client, suburb="Atlantis", state="NSW")
        processes.consumer(settings)
        job = wait_status(r, job_id, "failed")
        assert "Atlantis" in job["error"]
        assert "no sales" in job["error"]
        assert job["attempts"] == "1"
        assert job["finished_at"] >= job["started_at"]
        assert "Atlantis" in job["errors"]
        assert 0 < r.ttl(keys.job(job_id)) <= settings.job_ttl_s
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        assert r.xlen(keys.dead) == 0
        assert pdfs(settings) == []

    def test_entries_queued_before_any_consumer_are_processed(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """Nothing submitted before the first consumer starts is skipped (group at id 0)."""
        job_ids = [submit(client, suburb=s) for s in ("Manly", "Mosman", "Manly")]
        processes.consumer(settings)
        for job_id in job_ids:
            assert wait_status(r, job_id, "completed", "failed")["status"] == "completed"
        assert len(pdfs(settings)) == 3


class TestShutdown:
    def test_sigterm_mid_job_finishes_the_job(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """SIGTERM while a job is processing: the job completes, then the consumer exits 0."""
        job_id = submit(client)
        consumer = processes.consumer(settings)
        wait_status(r, job_id, "processing")
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(60) == 0
        assert job_hash(r, job_id)["status"] == "completed"
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        assert "consumer.stopped" in processes.log("consumer-1")

    def test_sigterm_stops_reading(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """After SIGTERM no new entry is taken: queued jobs stay queued for the next consumer."""
        consumer = processes.consumer(settings)
        wait_for(lambda: r.zscore(Keys().consumers, "test-1"), message="consumer heartbeat")
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(30) == 0
        job_id = submit(client)
        assert job_hash(r, job_id)["status"] == "queued"
        assert r.zscore(Keys().consumers, "test-1") is None

    def test_stop_while_taking_the_name_gives_it_back(
        self, r: redis.Redis, settings: Settings
    ) -> None:
        """A stop that lands while start-up beats for the first time: the process ends
        without leaving a heartbeat behind (the beat's stats hook is where the stop lands)."""
        consumer = Consumer(settings, renderer=HeldRenderer())

        def stop_during_first_beat() -> dict[str, str]:
            consumer.request_stop()
            return {}

        consumer.lease.stats = stop_during_first_beat
        assert consumer.run() == 0
        assert r.zrange(Keys().consumers, 0, -1) == []
        assert not r.exists(Keys().consumer(consumer.name))


class TestIdentity:
    def test_two_live_consumers_never_share_a_name(
        self, r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """A second process with a name already in use refuses to start."""
        processes.consumer(settings, slot=1)
        wait_for(lambda: r.hget(Keys().consumer("test-1"), "token"), message="first consumer")
        second = processes.start(["-m", "consumers", "--slot", "1"], settings_env(settings), "dup")
        assert second.wait(60) == 2
        assert "held by another live process" in processes.log("dup")


class TestSupervisor:
    def test_children_refusing_their_configuration_are_not_restarted(
        self, settings: Settings, processes: Processes, tmp_path: Path
    ) -> None:
        """`--concurrency 2` with a sales file that does not parse: each child exits 2, the
        supervisor restarts neither, says why, and exits 2."""
        sales = tmp_path / "broken.csv"
        sales.write_text("sold_date,address\nnot-a-date,1 Road\n")
        worker = processes.start(
            ["-m", "consumers", "--concurrency", "2"],
            settings_env(settings, AGENTLINK_SALES_CSV=str(sales)),
            "worker",
        )
        assert worker.wait(90) == 2
        log = processes.log("worker")
        assert "worker.child_misconfigured" in log
        assert log.count("worker.child_started") == 2
