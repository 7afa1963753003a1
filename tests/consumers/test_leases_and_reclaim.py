"""Never run twice: leases renewed through long renders, reclaim of a dead consumer's entry,
the hand-back at shutdown, and late writes of a consumer that stalled past its lease. Real
Redis and real consumer processes; faults are real signals."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient
from structlog.testing import capture_logs

from agentlink.admin.devredis import RedisServer
from agentlink.jobs import JobEvent, Status
from agentlink.settings import Settings
from agentlink.stream.connection import connect
from agentlink.stream.group import GroupMember
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome, error_record
from consumers.lease import LeaseKeeper
from tests.conftest import (
    Processes,
    job_hash,
    submit,
    wait_for,
    wait_status,
)
from tests.support.consumers import orphaned_entry, pdf_count, stalled_consumer


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class TestLease:
    def test_renewed_through_a_render_longer_than_the_lease(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """A render stalled for 3 leases is not reclaimed by a live second consumer."""
        _, child = stalled_consumer(processes, settings, slot=1)
        job_id = submit(client)
        wait_status(r, job_id, "processing")
        processes.consumer(settings, slot=2)
        wait_for(lambda: r.zscore(keys.consumers, "test-2"), message="second consumer")
        # Consumer 2 reclaims any entry idle for a lease: it never may, while test-1 renews.
        stalled_until = time.monotonic() + 3 * settings.lease_s
        while time.monotonic() < stalled_until:
            [pending] = r.xpending_range(keys.stream, keys.group, "-", "+", 10)
            assert pending["consumer"] == "test-1"
            assert pending["times_delivered"] == 1
            time.sleep(0.2)
        os.kill(child, signal.SIGCONT)
        job = wait_status(r, job_id, "completed")
        assert job["attempts"] == "1"
        assert job["consumer"] == "test-1"
        assert pdf_count(settings) == 1

    def test_a_failed_renewal_is_retried_as_soon_as_redis_is_back(
        self, fresh_redis: RedisServer, keys: Keys
    ) -> None:
        """Redis restarts under a held entry: the lease is renewed within a fraction of a
        second of its return, not a third of a lease (10 s here) later."""
        client = redis.Redis.from_url(fresh_redis.url, decode_responses=True)
        client.config_set("appendfsync", "always")
        member = GroupMember(connect(fresh_redis.url), keys, "test-a")
        member.ensure_group()
        entry_id = client.xadd(keys.stream, {"job_id": "j-1", "v": "1"})
        client.xreadgroup(keys.group, "test-a", {keys.stream: ">"}, count=1)
        lease = LeaseKeeper(member, lease_s=30.0)
        lease.hold(str(entry_id), "j-1", fresh=False)
        with capture_logs() as logs:
            fresh_redis.kill()
            lease.start()
            try:
                wait_for(
                    lambda: any(e["event"] == "lease.renew_failed" for e in logs),
                    30,
                    "the first renewal (after 10 s) to fail",
                )
                fresh_redis.start()
                wait_for(
                    lambda: any(e["event"] == "lease.renewed_after_outage" for e in logs),
                    5,
                    "a renewal once Redis is back",
                )
            finally:
                lease.stop()
        [pending] = client.xpending_range(keys.stream, keys.group, "-", "+", 10)
        assert pending["consumer"] == "test-a"
        assert pending["times_delivered"] == 1

    def test_renewal_never_steals_back(
        self, r: redis.Redis, keys: Keys, client: TestClient[Any]
    ) -> None:
        """The guarded renewal refuses an entry another consumer owns now."""
        submit(client)
        [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, "a", {keys.stream: ">"}, count=1)
        r.xclaim(keys.stream, keys.group, "b", 0, [entry_id], justid=True)
        assert GroupMember(r, keys, "a").renew(entry_id) == 0
        assert GroupMember(r, keys, "b").renew(entry_id) == 1
        [pending] = r.xpending_range(keys.stream, keys.group, "-", "+", 10)
        assert pending["consumer"] == "b"
        assert pending["times_delivered"] == 1
        r.xdel(keys.stream, entry_id)
        assert GroupMember(r, keys, "b").renew(entry_id) == -1
        assert r.xpending(keys.stream, keys.group)["pending"] == 1  # left for XAUTOCLAIM to report


class TestReclaim:
    def test_kill_9_mid_render_completes_elsewhere_once(
        self, client: TestClient[Any], r: redis.Redis, settings: Settings, processes: Processes
    ) -> None:
        """A consumer killed -9 mid-render: another reclaims and completes the job, once."""
        first, child = stalled_consumer(processes, settings, slot=1)
        job_id = submit(client)
        wait_status(r, job_id, "processing")
        first.kill()
        first.wait(10)
        wait_for(lambda: not _alive(child), 10, "render child to die with its consumer")
        processes.consumer(settings, slot=2)
        job = wait_status(r, job_id, "completed")
        assert job["consumer"] == "test-2"
        assert job["attempts"] == "2"
        assert pdf_count(settings) == 1
        assert "report.reclaimed" in processes.log("consumer-2")

    def test_restarted_consumer_resumes_its_own_pending_first(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """A consumer restarted under the same name re-reads its own pending entry at once."""
        # A lease (and name lock) far longer than the wait below: completing in time proves
        # that neither was waited out.
        long_lease = replace(settings, lease_s=300.0)
        first, _ = stalled_consumer(processes, long_lease, slot=1)
        job_id = submit(client)
        wait_status(r, job_id, "processing")
        first.kill()
        first.wait(10)
        processes.consumer(long_lease, slot=1)
        job = wait_status(r, job_id, "completed", timeout_s=90)
        assert job["attempts"] == "2"
        log = processes.log("consumer-1")
        assert "consumer.name_taken_over" in log
        assert "consumer.resuming_own_pending" in log

    def test_deleted_entry_marks_job_failed_entry_lost(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """A pending entry deleted from the stream fails its job with 'entry lost'."""
        job_id = submit(client)
        entry_id = orphaned_entry(r, keys)
        r.xdel(keys.stream, entry_id)  # the entry leaves the stream but stays in the PEL
        processes.consumer(settings)
        job = wait_status(r, job_id, "failed")
        assert "entry lost" in job["error"]
        assert r.xpending(keys.stream, keys.group)["pending"] == 0

    def test_entry_deleted_while_processing_fails_its_job(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """An entry deleted mid-render is noticed by the lease renewal: job fails 'entry lost'."""
        stalled_consumer(processes, settings)
        job_id = submit(client)
        job = wait_status(r, job_id, "processing")
        r.xdel(keys.stream, job["entry_id"])
        job = wait_status(r, job_id, "failed", timeout_s=30)
        assert "entry lost" in job["error"]
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        assert r.hlen(keys.index) == 0

    def test_entry_whose_job_record_is_gone_is_processed(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        processes: Processes,
        settings: Settings,
    ) -> None:
        """The job hash expired or was deleted: the entry rebuilds it and completes."""
        job_id = submit(client)
        r.delete(keys.job(job_id))
        consumer = processes.consumer(settings)
        job = wait_status(r, job_id, "completed")
        assert job["attempts"] == "1"
        assert job["suburb"] == "Manly"
        assert consumer.poll() is None

    def test_recorded_result_with_lost_ack_is_not_redone(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """An entry whose job is already completed is acked on redelivery, not rendered again."""
        job_id = submit(client)
        orphaned_entry(r, keys)
        r.hset(
            keys.job(job_id),
            mapping={"status": "completed", "attempts": "1", "result_path": "x.pdf"},
        )
        processes.consumer(settings)
        wait_for(lambda: r.xpending(keys.stream, keys.group)["pending"] == 0, message="ack")
        job = job_hash(r, job_id)
        assert job["attempts"] == "1"
        assert job["result_path"] == "x.pdf"
        assert pdf_count(settings) == 0


class TestShutdownGrace:
    def test_job_past_the_grace_period_is_handed_back(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """SIGTERM, render stuck past the grace period: exit 0, another consumer takes it now."""
        # The hand-back makes the entry idle for a whole lease: reclaimable at once. (A new
        # consumer still holds reclaims off until Redis has been up for a lease.)
        slow_lease = replace(settings, lease_s=30.0, shutdown_grace_s=1.0)
        first, _ = stalled_consumer(processes, slow_lease, slot=1)
        job_id = submit(client)
        wait_status(r, job_id, "processing")
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
        [pending] = r.xpending_range(keys.stream, keys.group, "-", "+", 10)
        assert pending["time_since_delivered"] >= slow_lease.lease_ms  # reclaimable now
        processes.consumer(slow_lease, slot=2)
        job = wait_status(r, job_id, "completed", timeout_s=90)
        assert job["consumer"] == "test-2"


class TestLateWritesOfAStalledConsumer:
    """A consumer that stalled past its lease must not undo what another consumer recorded."""

    @pytest.fixture
    def completed(self, client: TestClient[Any], r: redis.Redis, keys: Keys) -> tuple[str, str]:
        """A job completed by consumer B whose entry consumer A still believes it holds."""
        job_id = submit(client)
        [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, "a", {keys.stream: ">"}, count=1)
        r.xclaim(keys.stream, keys.group, "b", 0, [entry_id], justid=True)
        b = JobRecords(r, keys, "b")
        done = Outcome(Status.COMPLETED, {"finished_at": "t", "result_path": "p.pdf"}, [])
        assert b.finish(entry_id, job_id, 3600, done)[0]
        return job_id, entry_id

    def test_start_attempt_and_errors_leave_a_finished_job_alone(
        self, r: redis.Redis, keys: Keys, completed: tuple[str, str]
    ) -> None:
        """start reports -1 and neither it nor attempt_failed rewrites the status."""
        job_id, entry_id = completed
        a = JobRecords(r, keys, "a")
        claimed = JobEvent(event="claimed", at="late", consumer="a")
        assert a.start(job_id, entry_id, claimed, restore={}).attempt == -1
        record = error_record(2, "a", "boom", transient=True)
        assert not a.attempt_failed(job_id, record, [claimed], status=Status.RETRYING)
        job = job_hash(r, job_id)
        assert job["status"] == "completed"
        assert job.get("consumer") != "a"
        assert "started_at" not in job
        assert "boom" not in job.get("errors", "")

    def test_dead_letter_of_a_finished_or_foreign_entry_buries_nothing(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, completed: tuple[str, str]
    ) -> None:
        """No dead letter for a completed job, nor for an entry another consumer owns now."""
        job_id, entry_id = completed
        a = JobRecords(r, keys, "a")
        dead = Outcome(Status.DEAD, {"error": "x", "finished_at": "t"}, [])
        assert a.dead_letter(entry_id, job_id, 3600, {"error": "x"}, dead) == ""
        assert job_hash(r, job_id)["status"] == "completed"
        other = submit(client)
        [[_, [(other_entry, _)]]] = r.xreadgroup(keys.group, "a", {keys.stream: ">"}, count=1)
        r.xclaim(keys.stream, keys.group, "b", 0, [other_entry], justid=True)
        assert a.dead_letter(other_entry, other, 3600, {"error": "x"}, dead) == ""
        assert job_hash(r, other)["status"] == "queued"
        assert r.xlen(keys.dead) == 0
        assert r.xpending(keys.stream, keys.group)["pending"] == 1  # still b's
