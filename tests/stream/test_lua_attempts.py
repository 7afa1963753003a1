"""The scripts of an attempt, run directly against Redis through their thin Python callers
(agentlink.stream.records, agentlink.stream.group): start, renew, event, attempt_failed,
waiting and finish."""

from __future__ import annotations

import json

import redis

from agentlink.jobs import (
    AuState,
    Kind,
    ReportSpec,
    Status,
    entry_fields,
    restored_job_fields,
)
from agentlink.stream.group import GroupMember
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome, error_record
from tests.support.records import CREATED_MS, event, events, history_total, queue_job, take


class TestStart:
    def test_counts_the_attempt_and_marks_processing(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """Attempt 1, status processing in the hash and in the indexes, the claimed event
        stamped with its attempt, the heartbeat busy."""
        entry_id = queue_job(r, keys, request_id="req-1", created_at="2026-11-30T10:00:00Z")
        started = records.start("j1", entry_id, event("claimed"), restore={})
        assert (started.attempt, started.request_id) == (1, "req-1")
        job = r.hgetall(keys.job("j1"))
        assert (job["status"], job["consumer"], job["attempts"]) == ("processing", "c-1", "1")
        assert r.zrange(keys.jobs_with_status("queued"), 0, -1) == []
        assert r.zrange(keys.jobs_with_status("processing"), 0, -1) == ["j1"]
        [claimed] = json.loads(job["events"])
        assert claimed["attempt"] == 1
        assert r.hget(keys.consumer("c-1"), "state") == "busy"
        assert records.start("j1", entry_id, event("claimed"), restore={}).attempt == 2

    def test_a_finished_job_is_left_alone(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """-1 and the status; nothing written."""
        entry_id = queue_job(r, keys)
        r.hset(keys.job("j1"), "status", "completed")
        started = records.start("j1", entry_id, event("claimed"), restore={})
        assert (started.attempt, started.status) == (-1, "completed")
        assert "events" not in r.hgetall(keys.job("j1"))

    def test_a_missing_hash_is_restored(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """The record expired while its entry waited: written again from the entry, its
        owner and request id included, and back in every index (the expired outcome's
        status index left)."""
        entry_id = queue_job(r, keys)
        r.delete(keys.job("j1"))
        r.zrem(keys.jobs_with_status("queued"), "j1")
        r.zadd(keys.jobs_with_status("completed"), {"j1": CREATED_MS})
        spec = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW)
        entry = entry_fields("j1", spec, "2026-11-30T10:00:00.000+00:00", owner="key-a")
        entry["request_id"] = "req-1"
        restore = restored_job_fields("j1", spec, entry, now="2026-11-30T11:00:00.000+00:00")
        started = records.start("j1", entry_id, event("claimed"), restore=restore)
        assert (started.attempt, started.request_id) == (1, "req-1")
        job = r.hgetall(keys.job("j1"))
        assert (job["suburb"], job["owner"], job["status"]) == ("Manly", "key-a", "processing")
        assert job["created_at"] == "2026-11-30T10:00:00.000+00:00"
        assert r.zrange(keys.jobs_with_status("processing"), 0, -1) == ["j1"]
        assert r.zrange(keys.jobs_with_status("completed"), 0, -1) == []
        assert r.zrange(keys.job_ids, 0, -1) == ["j1"]
        assert r.zrange(keys.jobs_of_suburb("NSW", "manly"), 0, -1) == ["j1"]
        assert r.zrange(keys.suburbs, 0, -1) == ["manly|NSW"]

    def test_a_cancel_requested_meanwhile_is_reported(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """A retry of a job whose cancel was requested learns it at its start."""
        entry_id = queue_job(r, keys, cancel_requested="t")
        assert records.start("j1", entry_id, event("claimed"), restore={}).cancel_requested


class TestRenew:
    def test_owner_deleted_cancelled_and_finished(self, r: redis.Redis, keys: Keys) -> None:
        """1 renewed; 0 for another owner; 2 for a requested cancel; 3 (gate) finished;
        -1 for an entry deleted from the stream."""
        entry_id = queue_job(r, keys)
        take(r, keys)
        me, other = GroupMember(r, keys, "c-1"), GroupMember(r, keys, "c-2")
        job = keys.job("j1")
        assert me.renew(entry_id, job_key=job) == 1
        assert other.renew(entry_id, job_key=job) == 0
        r.hset(job, "cancel_requested", "t")
        assert me.renew(entry_id, job_key=job) == 2
        r.hdel(job, "cancel_requested")
        r.hset(job, "status", "completed")
        assert me.renew(entry_id, job_key=job, gate=True) == 3
        assert me.renew(entry_id, job_key=job) == 1
        r.xdel(keys.stream, entry_id)
        assert me.renew(entry_id, job_key=job) == -1

    def test_renewals_fold_into_one_event(self, r: redis.Redis, keys: Keys) -> None:
        """Consecutive renewals by one consumer are one event with a count."""
        entry_id = queue_job(r, keys)
        take(r, keys)
        me = GroupMember(r, keys, "c-1")
        for _ in range(3):
            me.renew(entry_id, job_key=keys.job("j1"), event=event("renewed"), cap=50)
        [renewed] = json.loads(r.hget(keys.job("j1"), "events") or "[]")
        assert renewed["count"] == 3

    def test_hand_back_makes_the_entry_idle_for_a_lease(self, r: redis.Redis, keys: Keys) -> None:
        """idle_ms of a lease: another consumer can XAUTOCLAIM it at once."""
        entry_id = queue_job(r, keys)
        take(r, keys)
        assert GroupMember(r, keys, "c-1").renew(entry_id, idle_ms=15_000) == 1
        _, claimed, _ = r.xautoclaim(keys.stream, keys.group, "c-2", 15_000, "0-0", count=1)
        assert [c[0] for c in claimed] == [entry_id]


class TestEventAndFailedAttempt:
    def test_event_needs_a_job(self, r: redis.Redis, keys: Keys, records: JobRecords) -> None:
        """No hash, no event; the timeline keeps its newest 50."""
        assert not records.note("nope", event("reclaimed"))
        queue_job(r, keys)
        for _ in range(60):
            assert records.note("j1", event("resumed"))
        assert len(events(r, keys)) == 50

    def test_attempt_failed_appends_history_unless_finished(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """Status retrying, error, history and events; nothing once the job has an outcome."""
        queue_job(r, keys)
        record = error_record(1, "c-1", "storage said 503", transient=True)
        assert records.attempt_failed(
            "j1", record, [event("rendered"), event("retrying")], status=Status.RETRYING
        )
        job = r.hgetall(keys.job("j1"))
        assert (job["status"], job["error"]) == ("retrying", "storage said 503")
        assert [e["error"] for e in json.loads(job["errors"])] == ["storage said 503"]
        assert events(r, keys) == ["rendered", "retrying"]
        assert r.zrange(keys.jobs_with_status("retrying"), 0, -1) == ["j1"]
        r.hset(keys.job("j1"), "status", "failed")
        assert not records.attempt_failed("j1", record, [], status=Status.RETRYING)

    def test_waiting_is_not_a_failed_attempt(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """A storage pause sets the status and error, and adds nothing to the history."""
        queue_job(r, keys)
        assert records.waiting("j1", "waiting for the storage: revoked", event("waiting"))
        assert "errors" not in r.hgetall(keys.job("j1"))


class TestFinish:
    def outcome(self, status: Status = Status.COMPLETED, **fields: str) -> Outcome:
        return Outcome(
            status, {"finished_at": "2026-11-30T10:00:01.000+00:00", **fields}, [event("completed")]
        )

    def test_records_once_acks_and_counts(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """Outcome, events, expiry, ack, index move, history, work stats, idle heartbeat;
        a second outcome writes nothing but still acks."""
        entry_id = queue_job(r, keys)
        take(r, keys)
        records.start("j1", entry_id, event("claimed"), restore={})
        wrote, _ = records.finish(
            entry_id, "j1", 600, self.outcome(result_path="p.pdf"), service_s=2.5, busy_s=3.0
        )
        assert wrote
        job = r.hgetall(keys.job("j1"))
        assert (job["status"], job["result_path"]) == ("completed", "p.pdf")
        assert 0 < r.ttl(keys.job("j1")) <= 600
        assert r.xpending(keys.stream, keys.group)["pending"] == 0
        assert not r.hexists(keys.index, entry_id)
        assert r.zrange(keys.jobs_with_status("completed"), 0, -1) == ["j1"]
        assert r.zrange(keys.jobs_with_status("processing"), 0, -1) == []
        assert history_total(r, keys, "completed") == 1
        assert r.hgetall(keys.work_stats) == {"busy_s": "3", "done": "1"}
        assert float(r.hget(keys.service_stats, "ewma_s") or 0) == 2.5
        assert r.hget(keys.consumer("c-1"), "state") == "idle"
        again, _ = records.finish(entry_id, "j1", 600, self.outcome(Status.FAILED))
        assert not again
        assert r.hget(keys.job("j1"), "status") == "completed"
        assert history_total(r, keys, "failed") == 0

    def test_the_callback_snapshot_ends_with_the_outcome(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """The callback entry carries the record with the outcome's own event last."""
        entry_id = queue_job(r, keys, callback_url="https://hook.eu1.make.com/x")
        take(r, keys)
        records.finish(entry_id, "j1", 600, self.outcome())
        [(_, callback)] = r.xrange(keys.callbacks.stream)
        record = json.loads(callback["record"])
        assert callback["status"] == "completed"
        assert "callback_url" not in record
        assert json.loads(record["events"])[-1]["event"] == "completed"

    def test_failed_jobs_keep_the_history_and_feed_no_average(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """A failed outcome appends its error record; its duration says nothing."""
        entry_id = queue_job(r, keys)
        take(r, keys)
        failed = Outcome(
            Status.FAILED,
            {"finished_at": "t", "error": "no data"},
            [],
            error_record(1, "c-1", "no data", transient=False),
        )
        assert records.finish(entry_id, "j1", 600, failed, service_s=1.0)[0]
        assert [e["error"] for e in json.loads(r.hget(keys.job("j1"), "errors") or "[]")] == [
            "no data"
        ]
        assert not r.exists(keys.service_stats)

    def test_ack_only_and_the_next_entry(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """Without an outcome the entry is only acked; with take_next the next new entry
        comes back, delivered to this consumer."""
        first = queue_job(r, keys)
        second = str(r.xadd(keys.stream, {"job_id": "j2", "kind": "agents"}))
        take(r, keys)
        wrote, nxt = records.finish(first, None, 600, None, take_next=True)
        assert not wrote
        assert nxt is not None
        assert (nxt.entry_id, nxt.fields["job_id"], nxt.deliveries) == (second, "j2", 1)
        [pending] = r.xpending_range(keys.stream, keys.group, "-", "+", 10)
        assert (pending["message_id"], pending["consumer"]) == (second, "c-1")
        assert records.finish(second, None, 600, None, take_next=True) == (False, None)
