"""Jobs laid out in Redis as the API leaves them, for tests of the consumers' scripts, and
what those scripts wrote read back (the ``records`` fixture is registered in
tests/conftest.py)."""

from __future__ import annotations

import json

import pytest
import redis

from agentlink.jobs import JobEvent
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords

CREATED_MS = 1796032800000


def event(name: str, consumer: str = "c-1") -> JobEvent:
    """An event of the job's timeline, by ``consumer``."""
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
    """The next new entry, read by ``consumer``: its id."""
    [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, consumer, {keys.stream: ">"}, count=1)
    return str(entry_id)


def events(r: redis.Redis, keys: Keys, job_id: str = "j1") -> list[str]:
    """The names of the job's events, oldest first."""
    return [e["event"] for e in json.loads(r.hget(keys.job(job_id), "events") or "[]")]


def history_total(r: redis.Redis, keys: Keys, name: str) -> int:
    """How many jobs the history buckets count under the outcome ``name``."""
    total = 0
    for key in r.scan_iter(match=keys.history(0).removesuffix("0") + "*"):
        total += sum(int(v) for k, v in r.hgetall(key).items() if k.endswith(f":{name}"))
    return total


@pytest.fixture
def records(r: redis.Redis, keys: Keys) -> JobRecords:
    """The records' scripts as consumer c-1 runs them."""
    return JobRecords(r, keys, "c-1")
