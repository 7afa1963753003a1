"""A report job meeting faults at awkward moments: a cancel during the retry back-off,
Redis away when an attempt starts or right before storing, a shutdown past its grace with
Redis away. A real consumer in a thread of the test, against real Redis; the render and the
storage are the test's (``tests/support/injected.py``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient
from structlog.testing import capture_logs

from agentlink.admin.devredis import RedisServer
from agentlink.api import create_app
from agentlink.errors import StorageConfigError, StorageUnavailableError
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from consumers.outcomes import CANCELLED_ERROR
from consumers.worker import Consumer
from tests.conftest import job_hash, submit, wait_for, wait_status
from tests.support.injected import HeldRenderer, ScriptedStorage, consumer_with
from tests.support.settings import quick_settings

AGENTS = "/api/generate-agents-report"
CALLBACK_URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    """Settings under which a job may carry a callback to 127.0.0.1."""
    return replace(settings, callback_hosts=("127.0.0.1",), callback_allow_insecure=True)


@pytest.fixture
def api(hooked: Settings) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(hooked)) as client:
        yield client


class TestCancelDuringBackoff:
    def test_cancel_while_waiting_to_retry_ends_the_job_cancelled(
        self, api: TestClient[Any], r: redis.Redis, keys: Keys, hooked: Settings
    ) -> None:
        """A transient storage error, then a cancel during the back-off (30 s or more): the
        job ends cancelled with the XACK and its callback; the consumer takes the next job."""
        storage = ScriptedStorage(StorageUnavailableError("storage answered 503"))
        slow_retries = replace(hooked, retry_base_s=60.0, retry_max_s=120.0)
        worker = consumer_with(slow_retries, HeldRenderer(), storage).start()
        try:
            answer = api.post(
                AGENTS, json={"suburb": "Manly", "state": "NSW", "callback_url": CALLBACK_URL}
            )
            job_id = answer.json()["job_id"]
            wait_status(r, job_id, "retrying")
            assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 200
            job = wait_status(r, job_id, "cancelled", "completed", "failed", "dead", timeout_s=20)
            assert job["status"] == "cancelled"
            assert job["error"] == CANCELLED_ERROR
            assert r.xpending(keys.stream, keys.group)["pending"] == 0
            [(_, callback)] = r.xrange(keys.callbacks.stream)
            assert (callback["job_id"], callback["status"]) == (job_id, "cancelled")
            assert worker.result is None  # still running
            following = submit(api)
            assert wait_status(r, following, "completed", "failed", "dead")["status"] == "completed"
        finally:
            result = worker.stop()
        assert result == 0
        assert len(storage.saved) == 1  # the following job's; the cancelled one stored nothing


class Handling:
    """``consumer.job.handle(entry)`` in a thread; ``error`` is what escaped it, if anything."""

    def __init__(self, consumer: Consumer, via: Any) -> None:
        entry = consumer.member.read_new(1000)
        assert entry is not None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(consumer, entry, via), daemon=True)

    def _run(self, consumer: Consumer, entry: Any, via: Any) -> None:
        try:
            consumer.job.handle(entry, via=via)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def start(self) -> Handling:
        self.thread.start()
        return self

    def join(self, timeout_s: float = 30.0) -> None:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the job was not handled"


@pytest.fixture
def outage(fresh_redis: RedisServer, tmp_path: Path) -> tuple[RedisServer, Settings]:
    """A Redis of the test's own (every write on disk, so a kill loses nothing), the settings
    for it, and one job queued through the API."""
    redis.Redis.from_url(fresh_redis.url).config_set("appendfsync", "always")
    settings = quick_settings(fresh_redis.url, tmp_path, "test")
    with TestClient(app=create_app(settings)) as client:
        submit(client)
    return fresh_redis, settings


def _retrying_write(logs: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "report.record_retrying" for e in logs)


class TestRedisAwayDuringAJob:
    def test_away_when_the_attempt_starts(self, outage: tuple[RedisServer, Settings]) -> None:
        """Redis goes away between the read and the attempt's start: the consumer waits
        for it, keeps the entry, and completes the job once Redis is back (one delivery)."""
        server, settings = outage
        storage = ScriptedStorage()
        consumer = Consumer(settings, renderer=HeldRenderer(), storage=storage)
        handling = Handling(consumer, "read")
        with capture_logs() as logs:
            server.kill()
            handling.start()
            wait_for(lambda: _retrying_write(logs) or handling.error, 30, "a retried write")
            server.start()
            handling.join()
        assert handling.error is None
        r = redis.Redis.from_url(server.url, decode_responses=True)
        [job_id] = [key.rsplit(":", 1)[1] for key in r.scan_iter("agentlink:job:*")]
        job = wait_status(r, job_id, "completed", "failed", "dead")
        assert (job["status"], job["attempts"]) == ("completed", "1")
        assert len(storage.saved) == 1
        assert r.xpending(Keys().stream, Keys().group)["pending"] == 0

    def test_away_right_before_storing(self, outage: tuple[RedisServer, Settings]) -> None:
        """Redis goes away during the render: the lease check before storing waits for it,
        and the rendered report is stored and recorded once Redis is back."""
        server, settings = outage
        renderer, storage = HeldRenderer(), ScriptedStorage()
        renderer.hold.set()
        consumer = Consumer(settings, renderer=renderer, storage=storage)
        # Resumed: Redis did not just hand the entry over, so the check asks Redis.
        handling = Handling(consumer, "resume").start()
        assert renderer.started.wait(30)
        with capture_logs() as logs:
            server.kill()
            renderer.release.set()
            wait_for(lambda: _retrying_write(logs) or handling.error, 30, "a retried write")
            server.start()
            handling.join()
        assert handling.error is None
        r = redis.Redis.from_url(server.url, decode_responses=True)
        [job_id] = [key.rsplit(":", 1)[1] for key in r.scan_iter("agentlink:job:*")]
        job = wait_status(r, job_id, "completed", "failed", "dead")
        assert (job["status"], job["attempts"]) == ("completed", "1")
        assert len(storage.saved) == 1


class TestShutdownWithRedisAway:
    def test_past_the_grace_the_consumer_stops_cleanly(
        self, outage: tuple[RedisServer, Settings]
    ) -> None:
        """Redis goes away during a render, then a stop: once the grace is over the render
        is abandoned, nothing can be written, and the consumer still exits 0; the entry
        stays pending for another consumer."""
        server, settings = outage
        renderer = HeldRenderer()
        renderer.hold.set()
        worker = consumer_with(
            replace(settings, shutdown_grace_s=0.5), renderer, ScriptedStorage()
        ).start()
        assert renderer.started.wait(30)
        with capture_logs() as logs:
            server.kill()
            result = worker.stop()
        assert result == 0
        assert any(e["event"] == "report.abandoned" for e in logs)
        server.start()
        r = redis.Redis.from_url(server.url, decode_responses=True)
        [pending] = r.xpending_range(Keys().stream, Keys().group, "-", "+", 10)
        assert pending["consumer"] == "test-1"


class TestLostEntryTimeline:
    def test_a_lost_entry_gets_none_of_the_previous_jobs_events(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """A job handed back after its render (a stop while the storage is misconfigured)
        leaves its ``rendered`` event unwritten; the next job failed as "entry lost" has
        only its own events."""
        storage = ScriptedStorage(StorageConfigError("token revoked"))
        storage.check_error = StorageConfigError("token revoked")
        consumer = Consumer(settings, renderer=HeldRenderer(), storage=storage)
        submit(client)
        handling = Handling(consumer, "read").start()
        wait_for(lambda: consumer.lease.state, 30, "the storage pause")
        consumer.request_stop()
        handling.join()
        assert handling.error is None
        lost_job = submit(client)
        [[_, [(lost_entry, _)]]] = r.xreadgroup(keys.group, "gone", {keys.stream: ">"}, count=1)
        r.xdel(keys.stream, lost_entry)
        consumer.job.entry_lost(lost_entry)
        job = job_hash(r, lost_job)
        assert job["status"] == "failed"
        assert [e["event"] for e in json.loads(job["events"])] == ["entry_lost"]
