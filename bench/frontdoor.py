"""``python -m bench.frontdoor``: AgentLink side by side with the FastAPI + RQ design it replaces.

One invocation, one private redis-server, both sides measured minutes apart on the same
machine: accept rate and latency under ``wrk``, a burst of simultaneous POSTs, API latency
while reports render, no-op dispatch rate and latency, reports per minute, reclaim after
``kill -9``, memory. Prints the table (ours, peer, ratio, target, verdict) and writes it to
``bench/results/latest.md``. Run it from the bench virtualenv (``make bench`` does); see
bench/README.md for what every figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from agentlink.admin.devredis import RedisServer
from bench import load, phases, services
from bench.harness import (
    ROOT,
    Processes,
    bench_parser,
    interrupt_on_sigterm,
    uninterrupted,
    work_folder,
)
from bench.scoreboard import Scoreboard

PHASES = ("wrk", "burst", "noop", "reclaim", "render")


@dataclass(slots=True)
class LoadWatch:
    """The 1-minute load average, read every 5 s while the bench runs."""

    readings: list[float] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Read until stopped."""
        while True:
            self.readings.append(os.getloadavg()[0])
            if self.stopping.wait(5.0):
                return

    def summary(self) -> str:
        """min / mean / max over the run."""
        values = self.readings or [os.getloadavg()[0]]
        mean = sum(values) / len(values)
        return f"min {min(values):.2f}, mean {mean:.2f}, max {max(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; print and write the table; returns the exit code."""
    parser = bench_parser("python -m bench.frontdoor", __doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (~6 min): fewer jobs")
    parser.add_argument("--only", default=",".join(PHASES), help=f"phases ({','.join(PHASES)})")
    parser.add_argument(
        "--api-workers",
        type=int,
        default=2,
        help="AgentLink API processes (2, the recommended CX22 configuration)",
    )
    parser.add_argument(
        "--ours-python",
        default=services.default_ours_python(),
        help="AgentLink's interpreter (.venv)",
    )
    parser.add_argument(
        "--burst", type=int, action="append", help="burst size (1000; 5000 too unless --quick)"
    )
    parser.add_argument("--reports", type=int, help="real reports per consumer (1000; --quick 200)")
    parser.add_argument("--reclaim-trials", type=int, help="kill -9 trials (5; --quick 3)")
    parser.add_argument(
        "--max-wait-s", type=float, default=services.MAX_WAIT_S, help="AGENTLINK_MAX_WAIT_S"
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "latest.md")
    args = parser.parse_args(argv)
    args.connections, args.wrk_s, args.load_s, args.paced_s = 50, 8, 20.0, 10.0
    args.burst = args.burst or ([1000] if args.quick else [1000, 5000])
    args.reports = args.reports or (200 if args.quick else 1000)
    args.reclaim_trials = args.reclaim_trials or (3 if args.quick else 5)
    args.noop_jobs, args.noop_rq_jobs = (1000, 150) if args.quick else (3000, 400)
    args.peer_jobs, args.peer_after_s = (60, 20.0) if args.quick else (100, 40.0)
    chosen = [p for p in args.only.split(",") if p]
    if unknown := set(chosen) - set(PHASES):
        parser.error(f"unknown phases: {sorted(unknown)}")
    interrupt_on_sigterm()
    with work_folder("agentlink-frontdoor-", keep=args.keep) as work:
        return _run(args, chosen, work)


def _run(args: argparse.Namespace, chosen: list[str], work: Path) -> int:
    """The ``chosen`` phases, their processes and logs in ``work``; returns the exit code."""
    fds = load.raise_fd_limit()
    processes = Processes(work)
    server = RedisServer(work / "redis")
    watch = LoadWatch()
    threading.Thread(target=watch.run, name="load-watch", daemon=True).start()
    started = time.monotonic()
    board = Scoreboard()
    failed: list[str] = []
    try:
        server.start()
        setup = services.Setup(
            processes, work, server.url, args.ours_python, args.api_workers, args.max_wait_s
        )
        header = (
            f"AgentLink vs FastAPI + RQ — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"API processes {args.api_workers}, open files {fds}{', quick' if args.quick else ''}"
        )
        print(header, flush=True)
        handlers = "async"  # the better peer variant, once wrk has run
        for phase in chosen:
            try:
                if phase == "wrk":
                    handlers = phases.phase_wrk(setup, board, args)
                elif phase == "burst":
                    phases.phase_burst(setup, board, args.burst, handlers)
                elif phase == "noop":
                    phases.phase_noop(setup, board, args)
                elif phase == "reclaim":
                    phases.phase_reclaim(setup, board, args.reclaim_trials)
                else:
                    phases.phase_render(setup, board, args, handlers)
            except (RuntimeError, OSError, redis.RedisError) as exc:
                # One broken phase must not cost the figures of the others.
                failed.append(phase)
                board.notes.append(f"phase {phase} FAILED: {type(exc).__name__}: {exc}")
                print(f"  phase {phase} failed: {exc}", file=sys.stderr, flush=True)
                processes.stop_all()
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        with uninterrupted():
            watch.stopping.set()
            processes.stop_all()
            server.stop()
    elapsed = time.monotonic() - started
    footer = [
        f"load average (1 min) during the run: {watch.summary()}; run time {elapsed / 60:.1f} min",
        *board.notes,
    ]
    print()
    print(board.text())
    print()
    print("\n".join(footer))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        f"# {header}\n\n{board.markdown()}\n\n" + "\n".join(f"- {line}" for line in footer) + "\n"
    )
    print(f"\nwritten to {args.results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
