"""Consumers in awkward states, for tests of leases and reclaim, and the reports they wrote."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import redis

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import (
    Processes,
    children_of,
    wait_for,
)


def render_child(consumer: subprocess.Popen[bytes]) -> int:
    """The pid of the consumer's render process (``python -m consumers.render_child``)."""

    def find() -> int | None:
        for pid in children_of(consumer.pid):
            try:
                if b"consumers.render_child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
        return None

    return int(wait_for(find, 30, "render child"))


def stalled_consumer(
    processes: Processes, settings: Settings, slot: int = 1, **env: str
) -> tuple[subprocess.Popen[bytes], int]:
    """A consumer whose render process is SIGSTOPped: its next render stalls until SIGCONT."""
    consumer = processes.consumer(settings, slot=slot, **env)
    wait_for(lambda: "consumer.started" in processes.log(f"consumer-{slot}"), 30, "consumer start")
    child = render_child(consumer)
    os.kill(child, signal.SIGSTOP)
    return consumer, child


def orphaned_entry(r: redis.Redis, keys: Keys, *, earlier_deliveries: int = 0) -> str:
    """Deliver the next new entry to a consumer ("ghost") that then died: the entry sits in
    the group's pending list, idle for 10 minutes, so the next consumer reclaims it at once.
    ``earlier_deliveries``: the delivery count Redis keeps for it, as if that many consumers
    had taken it and died. Returns the entry id."""
    [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, "ghost", {keys.stream: ">"}, count=1)
    r.xclaim(
        keys.stream,
        keys.group,
        "ghost",
        0,
        [entry_id],
        idle=10 * 60_000,
        retrycount=earlier_deliveries or None,
        justid=True,
    )
    return str(entry_id)


def pdf_count(settings: Settings) -> int:
    """How many PDFs the output folder holds."""
    return len(list(settings.output_dir.rglob("*.pdf")))
