"""The scripts outside the job records, run directly against Redis: the consumer name
scripts (claim, release, take-over and heartbeat, through agentlink.stream.group) and the
callback stream's callback_settle.lua and callback_promote.lua."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import redis

from agentlink.stream.group import GroupMember
from agentlink.stream.keys import Keys
from agentlink.stream.scripts import Scripts


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

    def test_release_after_the_hash_expired_clears_the_set(
        self, r: redis.Redis, keys: Keys
    ) -> None:
        """A beat late enough for the hash to expire (a busy machine) leaves the name in the
        set; releasing it then still takes it out: nobody else holds it."""
        me = GroupMember(r, keys, "w-1")
        assert me.heartbeat("token-a", 10_000, state="idle")
        r.delete(keys.consumer("w-1"))  # what the hash's expiry does
        assert me.release_name("token-a")
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
