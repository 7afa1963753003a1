"""``make chaos``: submit hundreds of jobs while killing consumers and Redis; count the damage.

The run, all on 127.0.0.1 with processes of its own (nothing shared with a running setup):

- a private redis-server (AOF, ``appendfsync everysec`` as in production, or ``always``
  with ``--fsync always``), ``agentlink api`` and ``--workers`` consumer slots, each
  ``python -m bench.chaos_consumer --slot N``: the real consumer with a storage that fails
  ``--storage-failure-rate`` of its saves and records every save;
- ``--jobs`` reports POSTed over HTTP, spread over ``--duration`` seconds, retried on
  connection errors and 5xx as Make does;
- meanwhile a consumer is ``kill -9``-ed every few seconds (``--kill-every-s`` on average)
  and restarted under the same name, and Redis is ``kill -9``-ed ``--redis-kills`` times and
  restarted from its AOF on the same port and folder;
- then the faults stop and the run waits for the queue to drain, and prints what was lost,
  what was duplicated, how long reclaiming a killed consumer's job took, and a verdict line
  ``lost=0 duplicated=0``. The exit code is 1 if any job was lost, 2 if fewer than 90 % of
  the jobs could be submitted at all (a broken API must not pass for a clean run).

It takes about ``--duration`` plus the drain (a few minutes with the defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.chaos_cluster import Cluster
from bench.chaos_record import ChaosRun, ConsumerKill, RedisKill, log_starts, read_saves
from bench.chaos_report import reclaims, render
from bench.chaos_watch import JobMonitor, Submission, Submitter
from bench.harness import (
    bench_parser,
    interrupt_on_sigterm,
    sample_suburbs,
    uninterrupted,
    wait_for_health,
    work_folder,
)


def plan_jobs(n: int, rng: random.Random) -> list[Submission]:
    """``n`` submissions: random suburbs of the sample data, random kinds."""
    suburbs = sample_suburbs()
    plan = []
    for i in range(n):
        suburb, state, _ = rng.choice(suburbs)
        plan.append(Submission(i, rng.choice(("agents", "agency")), suburb, state))
    return plan


def _faults(
    cluster: Cluster, monitor: JobMonitor, submitter: Submitter, rng: random.Random
) -> tuple[list[ConsumerKill], list[RedisKill]]:
    """Kill consumers and Redis for ``--duration`` seconds."""
    args = cluster.args
    t0 = time.monotonic()
    redis_at = [
        t0 + args.duration * k / (args.redis_kills + 1) for k in range(1, args.redis_kills + 1)
    ]
    next_kill = t0 + rng.uniform(0.5, 1.5) * args.kill_every_s
    next_progress = t0 + 15
    consumer_kills: list[ConsumerKill] = []
    redis_kills: list[RedisKill] = []
    while time.monotonic() - t0 < args.duration:
        cluster.revive()
        now = time.monotonic()
        if redis_at and now >= redis_at[0]:
            redis_at.pop(0)
            kill = cluster.kill_redis(submitter.accepted_ids(), monitor.completed_ids())
            redis_kills.append(kill)
            print(
                f"  {now - t0:6.1f} s  redis kill -9 #{len(redis_kills)}: back after "
                f"{kill.down_s:.1f} s; acked jobs missing {len(kill.missing_after)}/"
                f"{kill.acked_before}",
                flush=True,
            )
        elif now >= next_kill:
            next_kill = now + rng.uniform(0.5, 1.5) * args.kill_every_s
            running = [s for s, p in cluster.consumers.items() if p.poll() is None]
            if running:
                kill_c = cluster.kill_consumer(rng.choice(running), monitor)
                consumer_kills.append(kill_c)
        if now >= next_progress:
            next_progress = now + 15
            print(
                f"  {now - t0:6.1f} s  consumer kills {len(consumer_kills)}, "
                f"submitted {len(submitter.accepted_ids())}, "
                f"completed {len(monitor.completed_ids())}",
                flush=True,
            )
        time.sleep(0.1)
    return consumer_kills, redis_kills


def _write_details(path: Path, result: ChaosRun) -> None:
    """The raw observations behind the printed figures, for a closer look (``--keep``)."""
    details = {
        "settings": result.settings,
        "consumer_kills": [
            dataclasses.asdict(k) | {"jobs": sorted(k.jobs)} for k in result.consumer_kills
        ],
        "redis_kills": [dataclasses.asdict(k) for k in result.redis_kills],
        "reclaims": reclaims(result, float(result.settings["lease_s"])).details,
        "unexpected_exits": result.unexpected_exits,
        "submissions": [dataclasses.asdict(s) for s in result.submissions],
        "orphans": result.orphans,
    }
    path.write_text(json.dumps(details, indent=1, default=str))


def run(args: argparse.Namespace) -> int:
    """One chaos run; returns the exit code."""
    with work_folder("agentlink-chaos-", keep=args.keep) as work:
        return _run(args, work)


def _run(args: argparse.Namespace, work: Path) -> int:
    rng = random.Random(args.seed)
    cluster = Cluster(work, args)
    monitor: JobMonitor | None = None
    submitter: Submitter | None = None
    try:
        cluster.start()
        assert cluster.api is not None
        with httpx.Client(base_url=cluster.api.base_url, timeout=10) as client:
            wait_for_health(client, cluster.api)
        monitor = JobMonitor(cluster.server.url, cluster.keys)
        monitor.start()
        plan = plan_jobs(args.jobs, rng)
        submitter = Submitter(
            cluster.api.base_url, plan, window_s=args.duration * 0.9, on_accepted=monitor.add
        )
        started_at = time.time()
        print(
            f"chaos: {args.jobs} jobs over {args.duration:g} s, {args.workers} consumers, "
            f"lease {args.lease_s:g} s, fsync {args.fsync}; work folder {work}",
            flush=True,
        )
        submitter.start()
        consumer_kills, redis_kills = _faults(cluster, monitor, submitter, rng)
        faults_end_at = time.time()
        print("  faults stopped; waiting for the submissions and the drain …", flush=True)
        for slot in cluster.restart_at:  # restart killed slots now
            cluster.restart_at[slot] = 0.0
        deadline = time.monotonic() + args.drain_timeout_s
        while time.monotonic() < deadline:
            cluster.revive()
            if submitter.done() and monitor.unfinished(submitter.accepted_ids()) == 0:
                break
            time.sleep(0.5)
        drain_timed_out = time.monotonic() >= deadline
        submitter.close()
        monitor.poll()
        monitor.stop()
        for job_id, starts in log_starts(cluster.log_files()).items():
            if job_id in monitor.tracks:
                for start in starts:
                    monitor.tracks[job_id].add_start(start)
        accepted = submitter.accepted_ids()
        final, orphans, dead, pending = cluster.final_state(accepted)
        result = ChaosRun(
            settings={
                "jobs": args.jobs,
                "duration_s": args.duration,
                "workers": args.workers,
                "lease_s": args.lease_s,
                "fsync": args.fsync,
                "storage_failure_rate": args.storage_failure_rate,
                "kill_every_s": args.kill_every_s,
                "redis_kills": args.redis_kills,
                "rate_limit": args.rate_limit,
                "seed": args.seed,
            },
            submissions=plan,
            tracks=monitor.tracks,
            final=final,
            orphans=orphans,
            saves=read_saves(cluster.saves_file),
            consumer_kills=consumer_kills,
            redis_kills=redis_kills,
            unexpected_exits=cluster.unexpected_exits,
            output_dir=cluster.output_dir,
            started_at=started_at,
            faults_end_at=faults_end_at,
            drain_timed_out=drain_timed_out,
            dead_letters=dead,
            pending_at_end=pending,
            notes=[f"monitor rounds skipped while Redis was down: {monitor.blind_rounds}"],
        )
        _write_details(work / "chaos-details.json", result)
        text, lost, _duplicated = render(result)
        print()
        print(f"AgentLink chaos run — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        print(text)
        if lost:
            return 1
        if len(accepted) < 0.9 * len(plan):
            # Nothing lost, but nothing much tested either: a broken API must not pass.
            print(f"INVALID RUN: only {len(accepted)}/{len(plan)} jobs were submitted")
            return 2
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        with uninterrupted():
            if submitter is not None:
                submitter.close()
            if monitor is not None and monitor.is_alive():
                monitor.stop()
            cluster.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run."""
    parser = bench_parser("python -m bench.chaos", __doc__)
    parser.add_argument("--jobs", type=int, default=500, help="jobs to submit (500)")
    parser.add_argument("--duration", type=float, default=180, help="seconds of faults (180)")
    parser.add_argument("--workers", type=int, default=3, help="consumer slots (3)")
    parser.add_argument("--lease-s", type=float, default=10, help="AGENTLINK_LEASE_S (10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (1)")
    parser.add_argument("--kill-every-s", type=float, default=6, help="mean consumer kill gap (6)")
    parser.add_argument("--restart-delay-s", type=float, default=1, help="kill → restart (1)")
    parser.add_argument("--redis-kills", type=int, default=2, help="Redis kill -9 count (2)")
    parser.add_argument("--redis-down-s", type=float, default=2, help="Redis downtime (2)")
    parser.add_argument(
        "--storage-failure-rate", type=float, default=0.2, help="share of saves failing (0.2)"
    )
    parser.add_argument(
        "--fsync", choices=("everysec", "always"), default="everysec", help="appendfsync"
    )
    parser.add_argument(
        "--drain-timeout-s", type=float, default=900, help="wait for the drain (900)"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=0, help="AGENTLINK_RATE_LIMIT of the API (0: off)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.jobs < 1 or args.duration <= 0:
        parser.error("--workers, --jobs and --duration must be positive")
    interrupt_on_sigterm()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
