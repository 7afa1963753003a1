"""The API's scripts, run directly against Redis: submit.lua, read_job.lua, rate.lua."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from agentlink.admin.devredis import RedisServer
from agentlink.stream.keys import Keys
from agentlink.stream.lua import source


def _flat(fields: dict[str, str]) -> str:
    return json.dumps([item for pair in fields.items() for item in pair])


class Submit:
    """submit.lua with a readable call."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self.script = r.register_script(source("submit.lua"))
        r.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)

    def __call__(
        self,
        job_id: str,
        *,
        rate_limit: int = 0,
        idem: str | None = None,
        body: str = "sha-1",
        max_ahead: int = -1,
    ) -> list[Any]:
        keys = [
            self.keys.stream,
            self.keys.job(job_id),
            self.keys.index,
            self.keys.rate("caller"),
            self.keys.idempotency("t", "agents", idem or "none"),
        ]
        options = {
            "group": self.keys.group,
            "job_id": job_id,
            "created_at": "2026-11-30T10:00:00.000+00:00",
            "created_ms": 1796032800000,
            "state": "NSW",
            "suburb": "manly",
            "idx": self.keys.indexes,
            "job_prefix": self.keys.job(""),
            "rate_limit": rate_limit,
            "rate_period_ms": 60_000,
            "idem_ttl_s": 3600 if idem else 0,
            "body_sha256": body,
            "max_ahead": max_ahead,
        }
        entry = {"job_id": job_id, "kind": "agents", "suburb": "Manly"}
        job = {"job_id": job_id, "status": "queued", "created_at": options["created_at"]}
        return self.script(keys=keys, args=[json.dumps(options), _flat(entry), _flat(job)])  # type: ignore[no-any-return]


@pytest.fixture
def submit(r: redis.Redis, keys: Keys) -> Submit:
    return Submit(r, keys)


class TestSubmit:
    def test_queues_entry_hash_and_index(self, submit: Submit, r: redis.Redis, keys: Keys) -> None:
        """XADD with the fields in order, the job hash with its entry id, the index."""
        verdict, entry_id, ahead = submit("j1")
        assert (verdict, ahead) == ("queued", 0)
        [(stored_id, fields)] = r.xrange(keys.stream)
        assert stored_id == entry_id
        assert list(fields) == ["job_id", "kind", "suburb"]
        assert r.hget(keys.job("j1"), "entry_id") == entry_id
        assert r.hget(keys.index, entry_id) == "j1"

    def test_a_new_job_joins_the_indexes(self, submit: Submit, r: redis.Redis, keys: Keys) -> None:
        """By age, by status (queued), by id, by suburb; one 'accepted' in the history."""
        submit("j1")
        assert r.zscore(keys.jobs, "j1") == 1796032800000
        assert r.zrange(keys.jobs_with_status("queued"), 0, -1) == ["j1"]
        assert r.zrangebylex(keys.job_ids, "[j", "[j\xff") == ["j1"]
        assert r.zrange(keys.jobs_of_suburb("NSW", "Manly"), 0, -1) == ["j1"]
        assert r.zrange(keys.suburbs, 0, -1) == ["manly|NSW"]
        [history] = r.keys(keys.history(0).removesuffix("0") + "*")
        assert sum(int(v) for k, v in r.hgetall(history).items() if k.endswith(":accepted")) == 1

    def test_a_refused_job_joins_nothing(self, submit: Submit, r: redis.Redis, keys: Keys) -> None:
        """Refused by the backpressure: no index entry, nothing counted."""
        submit("j1")
        submit("j2", max_ahead=0)
        assert r.zrange(keys.jobs, 0, -1) == ["j1"]

    def test_counts_undelivered_and_pending_ahead(
        self, submit: Submit, r: redis.Redis, keys: Keys
    ) -> None:
        """Entries ahead: undelivered ones plus those a consumer holds."""
        submit("j1")
        submit("j2")
        r.xreadgroup(keys.group, "c", {keys.stream: ">"}, count=1)
        assert submit("j3")[2] == 2

    def test_full_queue_writes_nothing(self, submit: Submit, r: redis.Redis, keys: Keys) -> None:
        """More entries ahead than max_ahead: {'full', ahead}, no entry, no hash."""
        submit("j1")
        submit("j2")
        assert submit("j3", max_ahead=1) == ["full", 2]
        assert r.xlen(keys.stream) == 2
        assert not r.exists(keys.job("j3"))

    def test_rate_limit_refuses_before_anything_else(
        self, submit: Submit, r: redis.Redis, keys: Keys
    ) -> None:
        """Past the budget: {'limited', retry ms} and nothing written."""
        assert submit("j1", rate_limit=2)[0] == "queued"
        assert submit("j2", rate_limit=2)[0] == "queued"
        verdict, retry_ms = submit("j3", rate_limit=2)
        assert verdict == "limited"
        assert 0 < retry_ms <= 30_000
        assert not r.exists(keys.job("j3"))

    def test_repeated_key_returns_the_first_job(
        self, submit: Submit, r: redis.Redis, keys: Keys
    ) -> None:
        """Same idempotency key: the first job, its body hash, status and position."""
        submit("j0")
        submit("j1", idem="k", body="sha-a")
        assert submit("j2", idem="k", body="sha-b") == ["duplicate", "j1", "sha-a", "queued", 1]
        assert not r.exists(keys.job("j2"))
        assert r.xlen(keys.stream) == 2
        assert 0 < r.ttl(keys.idempotency("t", "agents", "k")) <= 3600

    def test_repeat_of_a_delivered_job_is_at_position_zero(
        self, submit: Submit, r: redis.Redis, keys: Keys
    ) -> None:
        """A job a consumer holds has nothing ahead of it any more."""
        submit("j1", idem="k")
        r.xreadgroup(keys.group, "c", {keys.stream: ">"}, count=1)
        r.hset(keys.job("j1"), "status", "processing")
        assert submit("j2", idem="k")[3:] == ["processing", 0]

    def test_repeat_whose_record_expired(self, submit: Submit, r: redis.Redis, keys: Keys) -> None:
        """The key outlives a deleted record: the job id, with an empty status."""
        submit("j1", idem="k")
        r.delete(keys.job("j1"))
        assert submit("j2", idem="k") == ["duplicate", "j1", "sha-1", "", 0]

    def test_refused_whole_when_redis_is_out_of_memory(
        self, fresh_redis: RedisServer, keys: Keys
    ) -> None:
        """Under maxmemory with noeviction the script does not start: no rate token spent,
        no half-written job."""
        r = redis.Redis.from_url(fresh_redis.url, decode_responses=True)
        submit = Submit(r, keys)
        submit("j1", rate_limit=100)
        r.config_set("maxmemory", "1")
        try:
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                submit("j2", rate_limit=100)
        finally:
            r.config_set("maxmemory", "0")
        assert r.xlen(keys.stream) == 1
        assert not r.exists(keys.job("j2"))
        r.close()


class TestReadJob:
    @pytest.fixture
    def read(self, r: redis.Redis, keys: Keys) -> Any:
        script = r.register_script(source("read_job.lua"))

        def call(job_id: str, owner: str = "", rate_limit: int = 0) -> list[Any]:
            options = {"rate_limit": rate_limit, "rate_period_ms": 60_000, "owner": owner}
            keys_ = [keys.job(job_id), keys.rate("reader")]
            return script(keys=keys_, args=[json.dumps(options)])  # type: ignore[no-any-return]

        return call

    def test_owner_reads_others_do_not(self, read: Any, r: redis.Redis, keys: Keys) -> None:
        """The owner and the any-owner filter get the fields; another tenant 'missing'."""
        r.hset(keys.job("j"), mapping={"status": "queued", "owner": "key-a"})
        assert read("j", owner="key-a")[0] == "found"
        assert read("j")[0] == "found"
        assert read("j", owner="key-b") == ["missing"]

    def test_no_owner_is_everyones(self, read: Any, r: redis.Redis, keys: Keys) -> None:
        """A hash without `owner` is readable by every tenant."""
        r.hset(keys.job("j"), mapping={"status": "queued"})
        assert read("j", owner="key-b") == ["found", "status", "queued"]

    def test_unknown_job_is_missing(self, read: Any) -> None:
        """No hash: 'missing'."""
        assert read("nope") == ["missing"]

    def test_reads_spend_the_rate_budget(self, read: Any) -> None:
        """The second read within a budget of one is limited."""
        assert read("nope", rate_limit=1) == ["missing"]
        assert read("nope", rate_limit=1)[0] == "limited"


class TestRate:
    def test_budget_then_refusal(self, r: redis.Redis, keys: Keys) -> None:
        """`limit` events pass, the next is refused with a retry time, remaining counts down."""
        script = r.register_script(source("rate.lua"))
        options = json.dumps({"limit": 3, "period_ms": 60_000})
        replies = [script(keys=[keys.rate("x")], args=[options]) for _ in range(4)]
        assert [reply[0] for reply in replies] == [1, 1, 1, 0]
        assert [reply[2] for reply in replies[:3]] == [2, 1, 0]
        assert 0 < replies[3][1] <= 20_000
        assert 0 < r.pttl(keys.rate("x")) <= 60_000

    def test_a_huge_limit_never_refuses(self, r: redis.Redis, keys: Keys) -> None:
        """A limit so large that its interval is below a double's precision still works."""
        script = r.register_script(source("rate.lua"))
        options = json.dumps({"limit": 10**12, "period_ms": 60_000})
        replies = [script(keys=[keys.rate("x")], args=[options]) for _ in range(3)]
        assert [reply[0] for reply in replies] == [1, 1, 1]

    def test_peek_counts_nothing(self, r: redis.Redis, keys: Keys) -> None:
        """A peek answers what one more event would get, and spends none of the budget."""
        script = r.register_script(source("rate.lua"))
        count = json.dumps({"limit": 2, "period_ms": 60_000})
        peek = json.dumps({"limit": 2, "period_ms": 60_000, "peek": True})
        assert [script(keys=[keys.rate("x")], args=[peek])[0] for _ in range(5)] == [1] * 5
        assert not r.exists(keys.rate("x"))
        assert [script(keys=[keys.rate("x")], args=[count])[0] for _ in range(2)] == [1, 1]
        refused = script(keys=[keys.rate("x")], args=[peek])
        assert refused[0] == 0
        assert refused[1] > 0
        ttl = r.pttl(keys.rate("x"))
        script(keys=[keys.rate("x")], args=[peek])
        assert r.pttl(keys.rate("x")) <= ttl


class TestIncludes:
    def test_fragments_are_expanded(self) -> None:
        """Scripts reach Redis with their fragments in place and no include lines left."""
        text = source("submit.lua")
        assert text.startswith("#!lua\n")
        assert "--!include" not in text
        assert "local function gcra(" in text
        assert "local function group_state(" in text
