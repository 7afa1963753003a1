"""``python -m bench.chaos_consumer --slot N``: a real consumer whose storage fails on purpose.

``bench.chaos`` runs this instead of ``python -m consumers``. It is the same
``consumers.worker.Consumer`` (signals, leases, reclaim, retries are untouched), built with
``storage=FlakyStorage(...)``: a ``LocalStorage`` that raises ``StorageUnavailableError``
(a transient error, as Dropbox's 5xx/429 would be) on a share of ``save`` calls, and appends
one JSON line per ``save`` outcome to a file all consumers share, so the chaos run can count
how many times each job's PDF was written and when. AgentLink's own code is not patched.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from agentlink.errors import StorageUnavailableError
from agentlink.jobs import JobResult
from agentlink.settings import Settings
from agentlink.storage.local import LocalStorage
from bench.harness import run_consumer


class FlakyStorage:
    """``LocalStorage`` that fails ``failure_rate`` of its saves, and records every save.

    A record is one line of JSON: ``t`` (unix seconds, after the outcome), ``path`` (which
    ends in ``-<job_id[:8]>.pdf``), ``ok``, ``consumer``, ``pid``. Lines are written with one
    ``write(2)`` on an ``O_APPEND`` descriptor, so concurrent consumers never interleave
    them and a ``kill -9`` right after a save still leaves its line in the file.
    """

    def __init__(
        self,
        inner: LocalStorage,
        *,
        failure_rate: float,
        rng: random.Random,
        record_file: Path,
        consumer: str,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.failure_rate = failure_rate
        self.rng = rng
        self.consumer = consumer
        self._fd = os.open(record_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def save(self, relative_path: str, pdf: bytes) -> JobResult:
        """Fail now and then (before writing anything); otherwise save and record it."""
        if self.rng.random() < self.failure_rate:
            self._record(relative_path, ok=False, size=0)
            raise StorageUnavailableError("chaos: injected storage failure (503)")
        result = self.inner.save(relative_path, pdf)
        self._record(relative_path, ok=True, size=result.bytes)
        return result

    def check(self) -> None:
        """The inner storage's own check (injected failures are for ``save`` only)."""
        self.inner.check()

    def _record(self, path: str, *, ok: bool, size: int) -> None:
        line = {
            "t": time.time(),
            "path": path,
            "ok": ok,
            "bytes": size,
            "consumer": self.consumer,
            "pid": os.getpid(),
        }
        os.write(self._fd, (json.dumps(line) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    """Run one flaky-storage consumer until SIGTERM/SIGINT; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.chaos_consumer", description=__doc__)
    parser.add_argument("--slot", type=int, required=True, help="consumer <name>-<slot>")
    parser.add_argument("--saves-file", type=Path, required=True, help="JSON lines of saves")
    parser.add_argument("--log-file", type=Path, required=True, help="JSON log of this slot")
    parser.add_argument("--failure-rate", type=float, default=0.2, help="share of saves failing")
    parser.add_argument("--seed", type=int, default=1, help="seed of the failure draws")
    parser.add_argument("--incarnation", type=int, default=0, help="restart count of the slot")
    args = parser.parse_args(argv)
    log_stream = args.log_file.open("a", buffering=1, encoding="utf-8")

    def parts(settings: Settings) -> dict[str, Any]:
        storage = FlakyStorage(
            LocalStorage(settings.output_dir),
            failure_rate=args.failure_rate,
            # One stream of draws per slot and restart: reproducible, never the same twice.
            rng=random.Random(f"{args.seed}-{args.slot}-{args.incarnation}"),
            record_file=args.saves_file,
            consumer=f"{settings.consumer_name}-{args.slot}",
        )
        return {"storage": storage}

    return run_consumer("chaos consumer", args.slot, parts, log_stream=log_stream)


if __name__ == "__main__":
    sys.exit(main())
