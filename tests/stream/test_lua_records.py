"""The consumers' scripts, run directly against Redis through their thin Python callers
(agentlink.stream.records, agentlink.stream.group): start, renew, event, attempt_failed,
finish, dead_letter, replay, cancel, prune_jobs and the name scripts."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import pytest
import redis

from agentlink.jobs import (
    AuState,
    JobEvent,
    Kind,
    ReportSpec,
    Status,
    entry_fields,
    restored_job_fields,
)
from agentlink.stream.deadletters import DeadLetters
from agentlink.stream.group import GroupMember
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome, error_record
from agentlink.stream.scripts import Scripts

CREATED_MS = 1796032800000


def event(name: str, consumer: str = "c-1") -> JobEvent:
    return JobEvent(event=name, at="2026-11-30T10:00:00.000+00:00", consumer=consumer)


def queue_job(r: redis.Redis, keys: Keys, job_id: str = "j1", **extra: str) -> str:
    """A job as the API leaves it: hash, entry, index entry, queued index."""
    r.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)
    entry_id = str(r.xadd(keys.stream, {"job_id": job_id, "kind": "agents"}))
    r.hset(
        keys.job(job_id),
        mapping={
            "job_id": job_id,
            "status": "queued",
            "created_ms": str(CREATED_MS),
            "entry_id": entry_id,
            **extra,
        },
    )
    r.hset(keys.index, entry_id, job_id)
    r.zadd(keys.jobs, {job_id: CREATED_MS})
    r.zadd(keys.jobs_with_status("queued"), {job_id: CREATED_MS})
    return entry_id


def take(r: redis.Redis, keys: Keys, consumer: str = "c-1") -> str:
    [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, consumer, {keys.stream: ">"}, count=1)
    return str(entry_id)


def events(r: redis.Redis, keys: Keys, job_id: str = "j1") -> list[str]:
    return [e["event"] for e in json.loads(r.hget(keys.job(job_id), "events") or "[]")]


def history_total(r: redis.Redis, keys: Keys, name: str) -> int:
    total = 0
    for key in r.scan_iter(match=keys.history(0).removesuffix("0") + "*"):
        total += sum(int(v) for k, v in r.hgetall(key).items() if k.endswith(f":{name}"))
    return total


@pytest.fixture
def records(r: redis.Redis, keys: Keys) -> JobRecords:
    return JobRecords(r, keys, "c-1")


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


class TestDeadLetter:
    def test_copies_with_history_marks_dead_and_acks(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """The letter keeps the entry's fields and the job's history (with the last attempt)."""
        entry_id = queue_job(r, keys)
        take(r, keys)
        record = error_record(5, "c-1", "gave up", transient=True)
        outcome = Outcome(
            Status.DEAD, {"finished_at": "t", "error": "gave up"}, [event("dead")], record
        )
        dead_id = records.dead_letter(
            entry_id, "j1", 600, {"job_id": "j1", "error": "gave up"}, outcome
        )
        [(letter_id, letter)] = r.xrange(keys.dead)
        assert letter_id == dead_id
        assert [e["error"] for e in json.loads(letter["errors"])] == ["gave up"]
        assert r.hget(keys.job("j1"), "status") == "dead"
        assert r.zrange(keys.jobs_with_status("dead"), 0, -1) == ["j1"]
        assert r.xpending(keys.stream, keys.group)["pending"] == 0

    def test_buries_nothing_owned_by_another_or_finished(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """Another consumer's entry: ''. A finished job's entry: only acked."""
        entry_id = queue_job(r, keys)
        take(r, keys, consumer="c-2")
        outcome = Outcome(Status.DEAD, {"finished_at": "t"}, [])
        assert records.dead_letter(entry_id, "j1", 600, {"job_id": "j1"}, outcome) == ""
        assert r.xpending(keys.stream, keys.group)["pending"] == 1
        r.hset(keys.job("j1"), "status", "completed")
        assert (
            JobRecords(r, keys, "c-2").dead_letter(entry_id, "j1", 600, {"job_id": "j1"}, outcome)
            == ""
        )
        assert r.xlen(keys.dead) == 0
        assert r.xpending(keys.stream, keys.group)["pending"] == 0


class TestReplay:
    def test_replays_as_a_new_entry_of_the_same_job(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """A new entry, the job queued again without expiry, the letter gone; an unknown
        letter replays nothing."""
        payload = msgspec.json.encode(
            {"kind": "agents", "suburb": "Manly", "state": "NSW"}
        ).decode()
        entry_id = queue_job(r, keys)
        take(r, keys)
        letter = {
            "job_id": "j1",
            "kind": "agents",
            "suburb": "Manly",
            "state": "NSW",
            "v": "1",
            "payload": payload,
            "submitted_at": "2026-11-30T10:00:00.000+00:00",
        }
        outcome = Outcome(Status.DEAD, {"finished_at": "t"}, [])
        dead_id = records.dead_letter(entry_id, "j1", 600, letter, outcome)
        letters = DeadLetters(r, keys)
        new_id = letters.replay(dead_id)
        assert new_id is not None
        assert r.xlen(keys.dead) == 0
        job = r.hgetall(keys.job("j1"))
        assert (job["status"], job["entry_id"]) == ("queued", new_id)
        assert r.ttl(keys.job("j1")) == -1
        assert events(r, keys)[-1] == "replayed"
        assert r.zrange(keys.jobs_with_status("queued"), 0, -1) == ["j1"]
        assert letters.replay(dead_id) is None

    def test_replay_all_stops_at_the_newest_letter_of_its_start(
        self, r: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A letter added while replay_all runs (a replayed job dying again) is left for the
        next call."""
        payload = msgspec.json.encode({"kind": "agents", "suburb": "Manly", "state": "NSW"})
        for job_id in ("j1", "j2"):
            r.xadd(keys.dead, {"job_id": job_id, "v": "1", "payload": payload})
        letters = DeadLetters(r, keys)
        replay = letters.replay

        def replay_and_die_again(dead_id: str) -> str | None:
            new_id = replay(dead_id)
            if r.hget(keys.job("j1"), "status") == "queued" and not r.exists(keys.job("late")):
                r.hset(keys.job("late"), "status", "dead")
                r.xadd(keys.dead, {"job_id": "late", "v": "1", "payload": payload})
            return new_id

        monkeypatch.setattr(letters, "replay", replay_and_die_again)
        assert len(letters.replay_all()) == 2
        assert [f["job_id"] for _, f in r.xrange(keys.dead)] == ["late"]


class TestCancel:
    def cancel(self, r: redis.Redis, keys: Keys, owner: str = "") -> list[Any]:
        options = {
            "idx": keys.indexes,
            "job_id": "j1",
            "owner": owner,
            "ttl_s": 600,
            "finished_at": "t",
            "error": "cancelled by an operator",
            "event": event("cancelled", consumer="operator"),
            "cap": 50,
        }
        keys_ = [keys.job("j1"), keys.callbacks.stream]
        return Scripts(r).run("cancel.lua", keys_, msgspec.json.encode(options))  # type: ignore[no-any-return]

    def test_a_queued_job_is_cancelled_at_once(self, r: redis.Redis, keys: Keys) -> None:
        """cancelled with its callback; the consumer that reads the entry only acks it."""
        entry_id = queue_job(r, keys, callback_url="https://hook.eu1.make.com/x")
        assert self.cancel(r, keys) == ["cancelled", "cancelled"]
        assert r.hget(keys.job("j1"), "status") == "cancelled"
        assert [f["status"] for _, f in r.xrange(keys.callbacks.stream)] == ["cancelled"]
        assert history_total(r, keys, "cancelled") == 1
        take(r, keys)
        started = JobRecords(r, keys, "c-1").start("j1", entry_id, event("claimed"), restore={})
        assert started.attempt == -1

    def test_a_running_job_gets_a_request(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """processing: cancel_requested, the status unchanged until its consumer records it."""
        entry_id = queue_job(r, keys)
        take(r, keys)
        records.start("j1", entry_id, event("claimed"), restore={})
        assert self.cancel(r, keys) == ["requested", "processing"]
        assert r.hexists(keys.job("j1"), "cancel_requested")
        assert events(r, keys)[-1] == "cancel_requested"

    def test_finished_missing_and_foreign_jobs(self, r: redis.Redis, keys: Keys) -> None:
        """A finished job: 'finished'; no job, or another tenant's: 'missing'."""
        assert self.cancel(r, keys) == ["missing", ""]
        queue_job(r, keys, owner="key-a")
        assert self.cancel(r, keys, owner="key-b") == ["missing", ""]
        r.hset(keys.job("j1"), "status", "failed")
        assert self.cancel(r, keys, owner="key-a") == ["finished", "failed"]


class TestPrune:
    def test_drops_expired_jobs_from_every_index(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """Jobs whose hash is gone leave every index; live ones stay."""
        queue_job(r, keys)
        r.zadd(keys.jobs, {"gone": CREATED_MS - 1})
        r.zadd(keys.jobs_with_status("completed"), {"gone": CREATED_MS - 1})
        r.zadd(keys.job_ids, {"gone": 0})
        r.hset(keys.indexes["where"], "gone", "NSW|manly")
        r.zadd(keys.jobs_of_suburb("NSW", "manly"), {"gone": CREATED_MS - 1})
        assert records.prune(before_ms=CREATED_MS + 1) == 1
        assert r.zrange(keys.jobs, 0, -1) == ["j1"]
        assert r.zrange(keys.jobs_with_status("completed"), 0, -1) == []
        assert r.zrange(keys.job_ids, 0, -1) == []
        assert r.zrange(keys.jobs_of_suburb("NSW", "manly"), 0, -1) == []
        assert not r.hexists(keys.indexes["where"], "gone")

    def test_a_suburb_goes_with_its_last_job(
        self, r: redis.Redis, keys: Keys, records: JobRecords
    ) -> None:
        """The suburbs list keeps a suburb while one of its jobs lives, and drops it with its
        last one."""
        queue_job(r, keys)
        jobs = {"gone-1": ("NSW", "manly"), "gone-2": ("VIC", "st kilda"), "j1": ("NSW", "manly")}
        for job_id, (state, suburb) in jobs.items():
            r.zadd(keys.jobs, {job_id: CREATED_MS})
            r.hset(keys.indexes["where"], job_id, f"{state}|{suburb}")
            r.zadd(keys.jobs_of_suburb(state, suburb), {job_id: CREATED_MS})
            r.zadd(keys.suburbs, {f"{suburb}|{state}": 0})
        assert records.prune(before_ms=CREATED_MS + 1) == 2
        assert r.zrange(keys.suburbs, 0, -1) == ["manly|NSW"]
        r.delete(keys.job("j1"))
        assert records.prune(before_ms=CREATED_MS + 1) == 1
        assert r.zrange(keys.suburbs, 0, -1) == []


class TestNames:
    def test_claim_release_take_over(self, r: redis.Redis, keys: Keys) -> None:
        """One token holds a name; release only by the holder; a dead holder's name can be
        freed by its token only."""
        me = GroupMember(r, keys, "w-1")
        assert me.heartbeat("token-a", 10_000, state="idle")
        assert not me.heartbeat("token-b", 10_000, state="idle")
        assert not me.release_name("token-b")
        assert not me.take_over_name("token-b")
        assert me.take_over_name("token-a")
        assert me.heartbeat("token-b", 10_000, state="idle")
        assert me.release_name("token-b")
        assert not r.exists(keys.consumer("w-1"))
        assert r.zscore(keys.consumers, "w-1") is None

    def test_heartbeat_expires_and_names_the_beat(self, r: redis.Redis, keys: Keys) -> None:
        """The hash expires with the lease; the set says when it last beat."""
        GroupMember(r, keys, "w-1").heartbeat("t", 10_000, state="busy")
        assert 0 < r.pttl(keys.consumer("w-1")) <= 10_000
        assert abs(float(r.zscore(keys.consumers, "w-1") or 0) - time.time()) < 60


class TestCallbackScripts:
    """callback_settle.lua and callback_promote.lua, on the callback stream's keys."""

    def deliverable(self, r: redis.Redis, keys: Keys, notifier: str = "n-1") -> str:
        cb = keys.callbacks
        r.xgroup_create(cb.stream, cb.group, id="0", mkstream=True)
        r.xadd(cb.stream, {"job_id": "j1", "status": "completed", "url": "https://h/x"})
        [[_, [(entry_id, _)]]] = r.xreadgroup(cb.group, notifier, {cb.stream: ">"}, count=1)
        return str(entry_id)

    def settle(self, r: redis.Redis, keys: Keys, entry_id: str, mode: str, **extra: Any) -> Any:
        cb = keys.callbacks
        options = {
            "group": cb.group,
            "consumer": extra.pop("consumer", "n-1"),
            "entry_id": entry_id,
            "mode": mode,
            "delay_ms": extra.pop("delay_ms", 0),
            "fields": ["job_id", "j1", "attempt", "2"],
        }
        keys_ = [cb.stream, cb.delayed, cb.dead]
        return Scripts(r).run("callback_settle.lua", keys_, msgspec.json.encode(options))

    def test_done_acks_and_deletes(self, r: redis.Redis, keys: Keys) -> None:
        """Delivered: the entry is acked and deleted, nothing parked or buried."""
        entry_id = self.deliverable(r, keys)
        assert self.settle(r, keys, entry_id, "done") == 1
        assert r.xlen(keys.callbacks.stream) == 0
        assert r.zcard(keys.callbacks.delayed) == 0
        assert r.xlen(keys.callbacks.dead) == 0

    def test_retry_parks_until_due_and_promote_moves_it_back(
        self, r: redis.Redis, keys: Keys
    ) -> None:
        """Parked with its due time; promote moves only due callbacks, each exactly once."""
        entry_id = self.deliverable(r, keys)
        assert self.settle(r, keys, entry_id, "retry", delay_ms=3_600_000) == 1
        [(member, due)] = r.zrange(keys.callbacks.delayed, 0, -1, withscores=True)
        assert json.loads(member) == {"job_id": "j1", "attempt": "2"}
        assert due > time.time() * 1000 + 3_500_000
        promote = [keys.callbacks.delayed, keys.callbacks.stream]
        assert Scripts(r).run("callback_promote.lua", promote, 10) == 0
        r.zadd(keys.callbacks.delayed, {member: 0})  # due now
        assert Scripts(r).run("callback_promote.lua", promote, 10) == 1
        assert r.zcard(keys.callbacks.delayed) == 0
        [(_, fields)] = r.xrange(keys.callbacks.stream)
        assert fields == {"job_id": "j1", "attempt": "2"}

    def test_dead_copies_the_callback(self, r: redis.Redis, keys: Keys) -> None:
        """Given up: copied to the dead callbacks with its fields."""
        entry_id = self.deliverable(r, keys)
        assert self.settle(r, keys, entry_id, "dead") == 1
        [(_, fields)] = r.xrange(keys.callbacks.dead)
        assert fields["job_id"] == "j1"

    def test_another_notifiers_entry_is_left_alone(self, r: redis.Redis, keys: Keys) -> None:
        """A notifier that lost its entry settles nothing."""
        entry_id = self.deliverable(r, keys, notifier="n-2")
        assert self.settle(r, keys, entry_id, "done", consumer="n-1") == 0
        assert r.xlen(keys.callbacks.stream) == 1
