"""``make bench``: how fast a report renders, and what the queue adds on top of that.

One run measures, on whatever machine runs it:

1. bare render: ``make_report`` with the bundled sample data, warm, in this process, for
   the Manly NSW agents and agency reports (median and p90 of ``--renders`` each);
2. the baseline for the pipeline: the same job mix the pipeline gets (``--jobs`` reports,
   several suburbs, both kinds), each rendered once, sequentially, in this process;
3. the pipeline: a private redis-server, ``agentlink api`` and one consumer
   (``python -m consumers --slot 1``) as subprocesses; the job mix is POSTed over HTTP and
   polled through ``GET /api/job-status/{id}`` until finished, while the peak RSS of the
   consumer and of its render child is read from ``/proc`` every 0.2 s.

The numbers of a noisy 2-core machine move by ±10 % between runs; the ratios (pipeline ÷
bare render, measured minutes apart in the same run) are what to compare across changes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from agentlink.admin.devredis import RedisServer, free_port
from agentlink.jobs import AuState, Kind, ReportSpec
from bench.harness import (
    Api,
    PeakMemory,
    Processes,
    bench_parser,
    clean_env,
    epoch_s,
    interrupt_on_sigterm,
    median,
    mib,
    quantile,
    sample_suburbs,
    seconds,
    table,
    uninterrupted,
    wait_for_health,
    work_folder,
)

_FINISHED = {"completed", "failed", "dead"}


def job_mix(n: int) -> list[ReportSpec]:
    """``n`` specs: suburbs spread over the sample data (big and small), kinds alternating."""
    suburbs = sample_suburbs()
    wanted = (n + 1) // 2
    step = max(1, len(suburbs) // wanted)
    chosen = (suburbs[::step] * wanted)[:wanted]
    specs = []
    for i in range(n):
        suburb, state, _ = chosen[(i // 2) % len(chosen)]
        kind = Kind.AGENTS if i % 2 == 0 else Kind.AGENCY
        specs.append(ReportSpec(kind=kind, suburb=suburb, state=AuState(state)))
    return specs


def bare_render_s(specs: list[ReportSpec], *, warmup: int = 0) -> list[float]:
    """Wall time of ``make_report`` for each spec, in this process, after ``warmup`` renders."""
    from agentlink.reports import make_report, sample_source

    source = sample_source()
    for _ in range(warmup):
        make_report(specs[0], job_id=uuid.uuid4().hex, source=source, generated_at=_now())
    timings = []
    for spec in specs:
        started = time.perf_counter()
        make_report(spec, job_id=uuid.uuid4().hex, source=source, generated_at=_now())
        timings.append(time.perf_counter() - started)
    return timings


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class PipelineRun:
    """What the pipeline run observed."""

    records: list[dict[str, Any]]
    first_post_s: float
    all_done_s: float
    memory: PeakMemory
    child_render_s: list[float] = field(default_factory=list)
    log_dir: Path | None = None


def _post(client: httpx.Client, spec: ReportSpec) -> str:
    response = client.post(
        f"/api/generate-{spec.kind.value}-report",
        json={"suburb": spec.suburb, "state": spec.state.value},
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["job_id"])


def _wait_finished(
    client: httpx.Client, job_ids: list[str], consumer: Any, timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Poll ``GET /api/job-status/{id}`` until every job is finished (bounded in time)."""
    records: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(records) < len(job_ids):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(job_ids) - len(records)} job(s) not finished after {timeout_s:g} s"
            )
        if consumer.poll() is not None:
            raise RuntimeError(f"the consumer exited with code {consumer.returncode}")
        for job_id in job_ids:
            if job_id in records:
                continue
            response = client.get(f"/api/job-status/{job_id}")
            if response.status_code == 200 and response.json()["status"] in _FINISHED:
                records[job_id] = response.json()
        time.sleep(0.2)
    return records


def _child_render_times(log: Path, job_ids: set[str]) -> list[float]:
    """``report.rendered`` seconds the consumer logged for ``job_ids`` (render in the child)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "report.rendered" and event.get("job_id") in job_ids:
            found.append(float(event["seconds"]))
    return found


def run_pipeline(
    specs: list[ReportSpec], work: Path, *, warmup: int, timeout_s: float
) -> PipelineRun:
    """Redis + API + one consumer; submit ``specs`` over HTTP and wait for all of them."""
    processes = Processes(work)
    server = RedisServer(work / "redis")
    memory: PeakMemory | None = None
    try:
        server.start()
        env = clean_env(
            REDIS_URL=server.url,
            AGENTLINK_OUTPUT_DIR=str(work / "reports"),
            AGENTLINK_CONSUMER_NAME="bench",
            AGENTLINK_LOG_FORMAT="json",
            # Polling 50 jobs several times a second is the bench, not abuse: no rate limit.
            AGENTLINK_RATE_LIMIT="0",
        )
        port = free_port()
        api = Api(
            processes.start(
                ["-m", "agentlink", "api", "--port", str(port)],
                {**env, "AGENTLINK_LOG_LEVEL": "warning"},
                "api.log",
            ),
            port,
        )
        consumer = processes.start(["-m", "consumers", "--slot", "1"], env, "consumer-1.log")
        memory = PeakMemory(consumer.pid)
        memory.start()
        with httpx.Client(base_url=api.base_url, timeout=10) as client:
            wait_for_health(client, api)
            # Warm-up jobs start the render child and load WeasyPrint before the clock runs.
            warm = [_post(client, specs[0]) for _ in range(warmup)]
            _wait_finished(client, warm, consumer, timeout_s)
            first_post = time.time()
            job_ids = [_post(client, spec) for spec in specs]
            records = _wait_finished(client, job_ids, consumer, timeout_s)
            all_done = time.time()
        memory.stop()
        return PipelineRun(
            records=[records[j] for j in job_ids],
            first_post_s=first_post,
            all_done_s=all_done,
            memory=memory,
            child_render_s=_child_render_times(work / "consumer-1.log", set(job_ids)),
            log_dir=work,
        )
    finally:
        with uninterrupted():
            if memory is not None and memory.is_alive():
                memory.stop()
            processes.stop_all()
            server.stop()


def _span(record: dict[str, Any], start: str, end: str) -> float | None:
    begin, finish = epoch_s(record.get(start)), epoch_s(record.get(end))
    return None if begin is None or finish is None else finish - begin


def report(
    manly: dict[str, list[float]], mix_bare: list[float], run: PipelineRun, n_jobs: int
) -> str:
    """The printed result: bare renders, the pipeline, and their ratios."""
    out = []
    rows = [
        [label, str(len(t)), seconds(median(t)), seconds(quantile(t, 0.9)), seconds(min(t))]
        for label, t in manly.items()
    ]
    rows.append(
        [
            f"pipeline job mix ({n_jobs} reports), once each",
            str(len(mix_bare)),
            seconds(median(mix_bare)),
            seconds(quantile(mix_bare, 0.9)),
            seconds(min(mix_bare)),
        ]
    )
    out.append("Bare render: make_report + sample_source(), warm, in this process")
    out.append(table(["report", "n", "median", "p90", "min"], rows))

    records = run.records
    done = [r for r in records if r["status"] == "completed"]
    service = [s for r in done if (s := _span(r, "started_at", "finished_at")) is not None]
    latency = [s for r in done if (s := _span(r, "created_at", "finished_at")) is not None]
    created = [t for r in records if (t := epoch_s(r.get("created_at"))) is not None]
    finished = [t for r in records if (t := epoch_s(r.get("finished_at"))) is not None]
    makespan = max(finished) - min(created) if created and finished else float("nan")
    throughput = len(done) / makespan if makespan > 0 else float("nan")
    mem = run.memory
    out.append("")
    out.append(f"Pipeline: redis-server + agentlink api + 1 consumer, {n_jobs} reports over HTTP")
    out.append(
        table(
            ["measure", "value", "how"],
            [
                ["completed", f"{len(done)}/{len(records)}", "GET /api/job-status"],
                [
                    "throughput",
                    f"{throughput:.2f} jobs/s",
                    "completed / (first created_at → last finished_at)",
                ],
                [
                    "client wall time",
                    seconds(run.all_done_s - run.first_post_s),
                    "first POST → all polled finished",
                ],
                [
                    "per-job time, median",
                    seconds(median(service)),
                    "started_at → finished_at (render + store + record)",
                ],
                ["per-job time, p90", seconds(quantile(service, 0.9)), ""],
                [
                    "render in the child, median",
                    seconds(median(run.child_render_s)),
                    "consumer log report.rendered",
                ],
                [
                    "latency, median",
                    seconds(median(latency)),
                    "created_at → finished_at (burst: mostly queue wait)",
                ],
                ["latency, max", seconds(max(latency, default=float("nan"))), ""],
                ["peak RSS consumer", mib(mem.parent_hwm_kib), "VmHWM of the consumer pid"],
                [
                    "peak RSS render child",
                    mib(mem.render_hwm_kib),
                    f"VmHWM, {len(mem.render_pids)} render process(es)",
                ],
                [
                    "peak RSS other children",
                    mib(mem.other_children_hwm_kib),
                    "VmHWM (none expected: the render child is the only one)",
                ],
                [
                    "peak RSS consumer + children",
                    mib(mem.combined_rss_kib),
                    f"sum of VmRSS, {mem.samples} samples every 0.2 s",
                ],
            ],
            align="lrl",
        )
    )
    bare_mean = sum(mix_bare) / len(mix_bare)
    per_job_pipeline = makespan / len(done) if done else float("nan")
    out.append("")
    out.append("Ratios (same run; 1.00 = no overhead)")
    out.append(
        table(
            ["ratio", "value"],
            [
                [
                    "pipeline time per job (makespan / jobs) ÷ bare mean of the same mix",
                    f"{per_job_pipeline / bare_mean:.2f}",
                ],
                [
                    "per-job time median ÷ bare median of the same mix",
                    f"{median(service) / median(mix_bare):.2f}",
                ],
                [
                    "render in the child median ÷ bare median of the same mix",
                    f"{median(run.child_render_s) / median(mix_bare):.2f}",
                ],
                [
                    "throughput ÷ bare renders per second (1 / bare mean)",
                    f"{throughput * bare_mean:.2f}",
                ],
            ],
        )
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table; returns the exit code."""
    parser = bench_parser("python -m bench.render", __doc__)
    parser.add_argument("--renders", type=int, default=20, help="bare renders per kind (20)")
    parser.add_argument("--jobs", type=int, default=50, help="reports through the pipeline (50)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up jobs (2)")
    parser.add_argument("--timeout-s", type=float, default=300, help="pipeline time limit (300)")
    args = parser.parse_args(argv)
    if args.renders < 2 or args.jobs < 2:
        parser.error("--renders and --jobs must be at least 2")
    interrupt_on_sigterm()
    with work_folder("agentlink-bench-", keep=args.keep) as work:
        return _run(args, work)


def _run(args: argparse.Namespace, work: Path) -> int:
    """The benchmark proper, its files in ``work``; returns the exit code."""
    try:
        import weasyprint

        print(
            f"AgentLink render benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
            f"Python {platform.python_version()}, WeasyPrint {weasyprint.__version__}",
            flush=True,
        )
        manly = {}
        for kind in (Kind.AGENTS, Kind.AGENCY):
            spec = ReportSpec(kind=kind, suburb="Manly", state=AuState.NSW)
            print(f"  bare render: Manly NSW {kind.value} x {args.renders} …", flush=True)
            manly[f"Manly NSW {kind.value}"] = bare_render_s([spec] * args.renders, warmup=2)
        specs = job_mix(args.jobs)
        print(f"  bare render: the pipeline's job mix x {len(specs)} …", flush=True)
        mix_bare = bare_render_s(specs)
        print(f"  pipeline: {len(specs)} reports through Redis, the API and a consumer …")
        run = run_pipeline(specs, work, warmup=args.warmup, timeout_s=args.timeout_s)
        print()
        print(report(manly, mix_bare, run, len(specs)))
        failed = [r for r in run.records if r["status"] != "completed"]
        if failed:
            print(f"\n{len(failed)} job(s) did not complete, e.g. {failed[0]}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
