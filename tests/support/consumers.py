"""Consumers in awkward states, for tests of leases and reclaim, and the reports they wrote."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from agentlink.settings import Settings
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


def pdf_count(settings: Settings) -> int:
    """How many PDFs the output folder holds."""
    return len(list(settings.output_dir.rglob("*.pdf")))
