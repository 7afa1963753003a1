"""``python -m bench.noop_consumer --slot N --events F``: a real consumer whose jobs do nothing.

For the no-op dispatch figures: what the queue itself costs per job, with no report to make.
It is the real ``consumers.worker.Consumer`` (XREADGROUP, leases, job-hash writes, the
outcome script with its XACK), built with ``renderer=NoopRenderer(...)`` and
``storage=NullStorage()``. The renderer appends ``{"job", "start"}`` (unix seconds) to
``--events`` when a job reaches it, as the peer's RQ no-op job does
(``bench.peer.jobs.noop_job``), so both are timed the same way. Nothing is patched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentlink.jobs import JobResult, ReportSpec
from bench.harness import run_consumer


@dataclass(frozen=True, slots=True)
class NoopReport:
    """What ``ReportJob`` reads of a rendered report."""

    pdf: bytes
    pages: int
    suburb: str


class NoopRenderer:
    """Renders nothing; notes each job's start in an events file (one ``write(2)`` each)."""

    def __init__(self, events: Path) -> None:
        self._fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def start(self) -> None:
        """Nothing to start."""

    def render(
        self,
        spec: ReportSpec,
        *,
        job_id: str,
        generated_at: datetime,
        should_abort: Callable[[], bool] = lambda: False,
    ) -> NoopReport:
        """Note the start; return an empty report."""
        del generated_at, should_abort
        line = json.dumps({"job": job_id, "start": time.time()})
        os.write(self._fd, (line + "\n").encode())
        return NoopReport(pdf=b"", pages=0, suburb=spec.suburb)

    def rss_bytes(self) -> int:
        """No render process."""
        return 0

    def memory(self) -> tuple[int, int]:
        """No render process."""
        return 0, 0

    def close(self) -> None:
        """Close the events file."""
        os.close(self._fd)


class NullStorage:
    """Stores nothing (the peer's no-op job stores nothing either)."""

    name = "null"

    def save(self, relative_path: str, pdf: bytes) -> JobResult:
        """Say where it would have gone."""
        return JobResult(storage=self.name, path=relative_path, bytes=len(pdf))

    def check(self) -> None:
        """Always usable."""


def main(argv: list[str] | None = None) -> int:
    """Run one no-op consumer until SIGTERM/SIGINT; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.noop_consumer", description=__doc__)
    parser.add_argument("--slot", type=int, required=True, help="consumer <name>-<slot>")
    parser.add_argument("--events", type=Path, required=True, help="JSON lines of job starts")
    args = parser.parse_args(argv)
    parts = {"storage": NullStorage(), "renderer": NoopRenderer(args.events)}
    return run_consumer("noop consumer", args.slot, lambda _settings: parts)


if __name__ == "__main__":
    sys.exit(main())
