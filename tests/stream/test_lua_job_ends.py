"""The scripts of jobs that end other than by their own finish, run directly against Redis
through their Python callers: dead_letter and replay (agentlink.stream.records,
agentlink.stream.deadletters), cancel, and prune_jobs for jobs whose record expired."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import redis

from agentlink.jobs import Status
from agentlink.stream.deadletters import DeadLetters
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome, error_record
from agentlink.stream.scripts import Scripts
from tests.support.records import CREATED_MS, event, events, history_total, queue_job, take


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
