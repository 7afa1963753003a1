"""The callback stream as tests read and fill it."""

from __future__ import annotations

import msgspec
import redis

from agentlink.stream.encoding import flatten
from agentlink.stream.keys import Keys


def callback_state(r: redis.Redis) -> tuple[int, int, int, int]:
    """(stream length, pending, delayed, dead) of the callback stream."""
    keys = Keys().callbacks
    pending = 0
    if r.exists(keys.stream) and r.xinfo_groups(keys.stream):
        pending = r.xpending(keys.stream, keys.group)["pending"]
    return (
        r.xlen(keys.stream) if r.exists(keys.stream) else 0,
        pending,
        r.zcard(keys.delayed),
        r.xlen(keys.dead) if r.exists(keys.dead) else 0,
    )


def enqueue_callback(r: redis.Redis, url: str, job_id: str) -> None:
    """A callback entry as the outcome scripts write it."""
    record = {
        "job_id": job_id,
        "kind": "agents",
        "status": "completed",
        "suburb": "Manly",
        "state": "NSW",
        "created_at": "2026-11-26T10:00:00.000+00:00",
    }
    fields = {
        "job_id": job_id,
        "status": "completed",
        "url": url,
        "attempt": "1",
        "record": msgspec.json.encode(record).decode(),
    }
    r.execute_command("XADD", Keys().callbacks.stream, "*", *flatten(fields))
