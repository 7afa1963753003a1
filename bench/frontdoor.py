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
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from agentlink.devredis import RedisServer
from agentlink.jobs import AuState, Kind, ReportSpec
from bench import dispatch, load, renders, services
from bench.harness import (
    ROOT,
    Processes,
    interrupt_on_sigterm,
    median,
    mib,
    quantile,
    uninterrupted,
)
from bench.scoreboard import Scoreboard, at_least, at_most, ms, per_s, ratio, statuses

PHASES = ("wrk", "burst", "noop", "reclaim", "render")
RECLAIM_SPEC = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW)


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


def phase_wrk(setup: services.Setup, board: Scoreboard, args: argparse.Namespace) -> str:
    """wrk against ours and both peer variants; returns the better peer variant's name."""
    print("  wrk: AgentLink …", flush=True)
    api = services.start_api(setup)
    wrk = {"connections": args.connections, "duration_s": args.wrk_s}
    ours = load.run_wrk(api.base_url, services.API_KEY, setup.work, **wrk)
    ours_rss = services.tree_rss_kib(api.process.pid)
    services.stop(api.process)
    peers = {}
    for handlers in ("sync", "async"):
        setup.flush()
        print(f"  wrk: FastAPI + RQ, {handlers} handlers …", flush=True)
        peer_api = services.start_peer_api(setup, handlers)
        peers[handlers] = (
            load.run_wrk(peer_api.base_url, services.API_KEY, setup.work, **wrk),
            services.tree_rss_kib(peer_api.process.pid),
        )
        services.stop(peer_api.process)
    setup.flush()
    best = max(peers, key=lambda h: peers[h][0].rate(200))
    peer, peer_rss = peers[best]
    title = f"wrk -t2 -c{args.connections} -d{args.wrk_s}s POST"
    board.section(f"{title} (peer: its better variant, {best} handlers)")
    accept = ratio(ours.rate(202), peer.rate(200))
    board.add(
        "accepted per second (ours 202, peer 200)",
        per_s(ours.rate(202)),
        per_s(peer.rate(200)),
        ratio=accept,
        target="≥ 3x peer",
        ok=at_least(accept, 3.0),
    )
    for other in ("sync", "async"):
        if other != best:
            board.add(f"  peer, {other} handlers", "", per_s(peers[other][0].rate(200)))
    board.add(
        "latency p50", ms(ours.p50_ms), ms(peer.p50_ms), ratio=ratio(ours.p50_ms, peer.p50_ms)
    )
    board.add(
        "latency p99",
        ms(ours.p99_ms),
        ms(peer.p99_ms),
        ratio=ratio(ours.p99_ms, peer.p99_ms),
        target="≤ 50 ms",
        ok=at_most(ours.p99_ms, 50),
    )
    board.add("other answers", statuses(ours.other(202)), statuses(peer.other(200)))
    board.add("socket errors", statuses(ours.socket_errors), statuses(peer.socket_errors))
    board.add(
        "API RSS after the load",
        mib(ours_rss),
        mib(peer_rss),
        ratio=ratio(ours_rss, peer_rss),
    )
    return best


def phase_burst(setup: services.Setup, board: Scoreboard, sizes: list[int], handlers: str) -> None:
    """n simultaneous POSTs, one connection each, to each side."""
    client = redis.Redis.from_url(setup.redis_url)
    for n in sizes:
        results = {}
        for side in ("ours", "peer"):
            setup.flush()
            print(f"  burst of {n}: {side} …", flush=True)
            if side == "ours":
                api = services.start_api(setup)
                length = lambda: int(client.xlen("agentlink:reports"))  # noqa: E731
            else:
                api = services.start_peer_api(setup, handlers)
                length = lambda: int(client.llen(f"rq:queue:{services.PEER_QUEUE}"))  # noqa: E731
            results[side] = load.burst(api.port, n, services.API_KEY, length)
            services.stop(api.process)
        ours, peer = results["ours"], results["peer"]
        ok_ours, ok_peer = ours.statuses.get(202, 0), peer.statuses.get(200, 0)
        board.section(f"burst of {n:,} simultaneous POSTs, one connection each")
        board.add(
            "accepted",
            f"{ok_ours:,}",
            f"{ok_peer:,}",
            ratio=ratio(ok_ours, ok_peer),
            target=f"all {n:,}",
            ok=ok_ours == n,
        )
        board.add("refused", _refusals(ours), _refusals(peer))
        board.add(
            "first request → all accepted are queued",
            _s(ours.queued_s),
            _s(peer.queued_s),
            ratio=ratio(ours.queued_s, peer.queued_s),
        )
        board.add(
            "new queue entries = accepted",
            f"{ours.queued:,} ({'yes' if ours.queued == ok_ours else 'NO'})",
            f"{peer.queued:,} ({'yes' if peer.queued == ok_peer else 'NO'})",
            ok=ours.queued == ok_ours,
        )
        for side, result in results.items():
            for reason, count in result.reasons.most_common(4):
                board.notes.append(f"burst {n:,}, {side}: {count} x {reason}")


def _refusals(result: load.BurstResult) -> str:
    refused = {s: c for s, c in result.statuses.items() if not 200 <= s < 300}
    refused.update({f"no answer ({k})": c for k, c in result.failures.items()})  # type: ignore[dict-item]
    return statuses(refused)  # type: ignore[arg-type]


def _s(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.2f} s"


def phase_noop(setup: services.Setup, board: Scoreboard, args: argparse.Namespace) -> None:
    """No-op drain and paced dispatch latency: one consumer vs one RQ worker."""
    print(f"  no-op: {args.noop_jobs} jobs, one AgentLink consumer …", flush=True)
    ours = dispatch.noop_ours(setup, args.noop_jobs, 20, args.paced_s)
    print(f"  no-op: {args.noop_rq_jobs} jobs, rq worker --burst …", flush=True)
    fork = dispatch.noop_peer(setup, args.noop_rq_jobs, 20, args.paced_s, simple=False)
    print(f"  no-op: {args.noop_jobs} jobs, rq worker --burst (SimpleWorker) …", flush=True)
    simple = dispatch.noop_peer(setup, args.noop_jobs, 20, args.paced_s, simple=True)
    board.section("no-op jobs: one consumer (leases on) vs one RQ worker")
    r = ratio(ours.per_s, fork.per_s)
    board.add(
        "drained per second, vs rq worker",
        per_s(ours.per_s),
        per_s(fork.per_s),
        ratio=r,
        target="≥ 50x rq worker",
        ok=at_least(r, 50),
    )
    board.add(
        "drained per second, vs SimpleWorker",
        per_s(ours.per_s),
        per_s(simple.per_s),
        ratio=ratio(ours.per_s, simple.per_s),
    )
    o50, o99 = dispatch.summary_ms(ours.latency_ms)
    for label, peer in (("rq worker", fork), ("SimpleWorker", simple)):
        p50, p99 = dispatch.summary_ms(peer.latency_ms)
        board.add(f"dispatch p50 at 20/s, vs {label}", ms(o50), ms(p50), ratio=ratio(o50, p50))
        board.add(
            f"dispatch p99 at 20/s, vs {label}",
            ms(o99),
            ms(p99),
            ratio=ratio(o99, p99),
            target="≤ 2 ms",
            ok=at_most(o99, 2),
        )


def phase_reclaim(setup: services.Setup, board: Scoreboard, trials: int) -> None:
    """kill -9 of a consumer mid-job, ``trials`` times."""
    print(f"  reclaim: {trials} x kill -9 of a consumer mid-job (lease 15 s) …", flush=True)
    result = dispatch.reclaim(setup, trials, RECLAIM_SPEC)
    board.section(f"kill -9 of a consumer mid-job, another alive (default lease), {trials} times")
    restarted = result.restarted_s
    board.add(
        "kill → job restarted elsewhere, median / max",
        f"{median(restarted):.1f} / {max(restarted, default=math.nan):.1f} s",
        "-",
        target="≤ 15 s",
        ok=at_most(max(restarted, default=math.nan), 15),
    )
    done = result.completed_s
    board.add(
        "kill → job completed, median / max",
        f"{median(done):.1f} / {max(done, default=math.nan):.1f} s",
    )
    if result.skipped:
        board.notes.append(f"reclaim: {result.skipped} trial(s) finished before the kill; rerun")


def phase_render(
    setup: services.Setup, board: Scoreboard, args: argparse.Namespace, handlers: str
) -> None:
    """API latency under render load, reports per minute, memory after many reports."""
    from bench.render import bare_render_s, job_mix

    mix = job_mix(40)
    print("  render: warm bare render time of the job mix, in this process …", flush=True)
    bare = bare_render_s(mix, warmup=2)
    limit = 2 * 60 / (sum(bare) / len(bare))
    marks = sorted({100, args.reports})
    print(f"  render: 2 AgentLink consumers, {args.reports} reports each …", flush=True)
    ours = renders.ours(setup, mix, args.reports, args.load_s, marks)
    print("  render: 2 RQ workers …", flush=True)
    peer = renders.peer(setup, mix, args.peer_jobs, args.load_s, args.peer_after_s, handlers)
    board.section(
        f"API while 2 workers render flat out: 20 POST/s + 20 GET/s for {args.load_s:g} s"
    )
    for label, ours_ms, peer_ms in (
        ("POST", ours.paced.post_ms, peer.paced.post_ms),
        ("GET status", ours.paced.get_ms, peer.paced.get_ms),
    ):
        o99, p99 = quantile(ours_ms, 0.99), quantile(peer_ms, 0.99)
        board.add(
            f"{label} p50 / p99 / max",
            f"{ms(median(ours_ms))} / {ms(o99)} / {ms(max(ours_ms, default=math.nan))}",
            f"{ms(median(peer_ms))} / {ms(p99)} / {ms(max(peer_ms, default=math.nan))}",
            ratio=ratio(o99, p99),
            target="p99 ≤ 100 ms",
            ok=at_most(o99, 100),
        )
    board.add("errors", statuses(ours.paced.errors), statuses(peer.paced.errors))  # type: ignore[arg-type]
    board.section("reports per minute, real render, 2 workers, same job mix")
    r = ratio(ours.per_min, peer.per_min)
    board.add(
        "reports per minute",
        f"{ours.per_min:.0f}",
        f"{peer.per_min:.0f}",
        ratio=r,
        target="≥ 1.6x peer",
        ok=at_least(r, 1.6),
    )
    share = ours.per_min / limit
    board.add(
        "share of the render-bound limit",
        f"{share:.0%} of {limit:.0f}/min",
        f"{peer.per_min / limit:.0%}",
        target="≥ 95 %",
        ok=at_least(share, 0.95),
    )
    board.notes.append(
        f"render-bound limit = 2 x 60 ÷ {sum(bare) / len(bare):.3f} s (mean warm render of the "
        f"{len(mix)}-report mix, in the bench process); windows: ours {ours.window_reports} "
        f"reports in {ours.window_s:.0f} s, peer {peer.window_reports} in {peer.window_s:.0f} s"
    )
    board.section(f"memory of a worker (consumer + render child + helpers), {args.reports} reports")
    worst = {
        m: max(
            (s[m] for s in ours.memory.values() if s[m]), key=lambda x: x.total_kib, default=None
        )
        for m in marks
    }
    first, last = worst.get(100), worst.get(args.reports)
    if first and last:
        growth = last.total_kib / first.total_kib - 1
        board.add(
            f"RSS at report {args.reports} (peak of its last 100)",
            mib(last.total_kib),
            target="≤ 180 MiB",
            ok=at_most(last.total_kib / 1024, 180),
        )
        board.add(
            f"growth, report 100 → {args.reports}",
            f"{growth:+.1%}",
            target="≤ 10 %",
            ok=at_most(growth, 0.10),
        )
        board.add(
            f"consumer alone, report 100 → {args.reports}",
            f"{mib(first.consumer_kib)} → {mib(last.consumer_kib)}",
        )


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; print and write the table; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.frontdoor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a short run (~5 min): fewer jobs")
    parser.add_argument("--only", default=",".join(PHASES), help=f"phases ({','.join(PHASES)})")
    parser.add_argument("--api-workers", type=int, default=1, help="AgentLink API processes (1)")
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
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    args = parser.parse_args(argv)
    args.connections, args.wrk_s, args.load_s, args.paced_s = 50, 8, 20.0, 10.0
    args.burst = args.burst or ([1000] if args.quick else [1000, 5000])
    args.reports = args.reports or (200 if args.quick else 1000)
    args.reclaim_trials = args.reclaim_trials or (3 if args.quick else 5)
    args.noop_jobs, args.noop_rq_jobs = (1000, 150) if args.quick else (3000, 400)
    args.peer_jobs, args.peer_after_s = (60, 20.0) if args.quick else (100, 40.0)
    phases = [p for p in args.only.split(",") if p]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {sorted(unknown)}")
    interrupt_on_sigterm()
    fds = load.raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="agentlink-frontdoor-"))
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
        for phase in phases:
            try:
                if phase == "wrk":
                    handlers = phase_wrk(setup, board, args)
                elif phase == "burst":
                    phase_burst(setup, board, args.burst, handlers)
                elif phase == "noop":
                    phase_noop(setup, board, args)
                elif phase == "reclaim":
                    phase_reclaim(setup, board, args.reclaim_trials)
                else:
                    phase_render(setup, board, args, handlers)
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
            if args.keep:
                print(f"work folder kept: {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
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
