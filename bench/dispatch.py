"""What the queue costs per job, and how fast a crashed consumer's job comes back.

- **No-op drain**: a queue pre-filled with jobs that do nothing, drained by ONE of our
  consumers (``bench.noop_consumer``: the real loop, leases on) or by one RQ worker
  (``rq worker --burst``, forking a work horse per job, and the same with
  ``--worker-class rq.worker.SimpleWorker``). Jobs per second = (n - 1) ÷ (first job start →
  last job start), from the start times the jobs themselves write; start-up is not counted.
- **Dispatch latency**: jobs enqueued at a steady 20 per second to an idle consumer or
  worker; enqueue call → the job starting, per job.
- **Reclaim**: two real consumers; one report job; once a consumer has started it, that
  consumer gets ``kill -9``; time until the other one has taken the job over and finished it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from rq import Queue

from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.stream.keys import Keys
from bench import services
from bench.harness import median, quantile
from bench.services import Setup

NOOP_SPEC = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW)
PEER_NOOP = "bench.peer.jobs.noop_job"


@dataclass(slots=True)
class Dispatch:
    """One side's no-op figures."""

    jobs: int = 0
    per_s: float = float("nan")
    latency_ms: list[float] = field(default_factory=list)


def _starts(events: Path) -> dict[str, float]:
    """Job id → start time, from an events file (ours or the peer's)."""
    found: dict[str, float] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in events.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError):
                event = json.loads(line)
                found[event["job"]] = float(event["start"])
    return found


def _wait_count(
    events: Path, n: int, process: Any, timeout_s: float, ids: set[str] | None = None
) -> dict[str, float]:
    """Wait until ``n`` jobs (and every one of ``ids``) have started; job id → start."""
    deadline = time.monotonic() + timeout_s
    while True:
        starts = _starts(events)
        if len(starts) >= n and (ids is None or ids <= starts.keys()):
            return starts
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{events.name}: {len(starts)} of {n} jobs started in {timeout_s:g} s"
            )
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{events.name}: the worker exited after {len(starts)} jobs")
        time.sleep(0.05)


def _rate(starts: dict[str, float]) -> float:
    times = sorted(starts.values())
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def _latencies(sent: dict[str, float], starts: dict[str, float]) -> list[float]:
    return [(starts[j] - t) * 1000 for j, t in sent.items() if j in starts]


def noop_ours(setup: Setup, n: int, per_s: float, duration_s: float) -> Dispatch:
    """Drain ``n`` pre-filled no-op jobs with one consumer, then the paced latency run."""
    setup.flush()
    result = Dispatch(jobs=n)
    services.enqueue_ours(setup.redis_url, [NOOP_SPEC] * n)
    events = setup.work / "noop-ours.jsonl"
    consumer = services.start_consumer(setup, 1, noop_events=events, log_name="noop-ours.log")
    try:
        result.per_s = _rate(_wait_count(events, n, consumer, timeout_s=60 + n / 20))
        # The same consumer, idle now, takes the paced jobs.
        sent = services.paced_enqueue_ours(setup.redis_url, NOOP_SPEC, per_s, duration_s)
        starts = _wait_count(events, n, consumer, timeout_s=30, ids=set(sent))
        result.latency_ms = _latencies(sent, starts)
    finally:
        services.stop(consumer)
    return result


def noop_peer(setup: Setup, n: int, per_s: float, duration_s: float, *, simple: bool) -> Dispatch:
    """The same with one RQ worker (forking, or ``SimpleWorker``)."""
    setup.flush()
    result = Dispatch(jobs=n)
    connection = redis.Redis.from_url(setup.redis_url)
    queue = Queue(services.PEER_QUEUE, connection=connection)
    with connection.pipeline() as pipe:
        for _ in range(n):
            queue.enqueue(PEER_NOOP, _new_id(), pipeline=pipe)
        pipe.execute()
    label = "simple" if simple else "fork"
    events = setup.work / f"noop-rq-{label}.jsonl"
    worker = services.rq_worker(setup, events, name=f"noop-{label}", simple=simple, burst=True)
    try:
        result.per_s = _rate(_wait_count(events, n, worker, timeout_s=60 + n / 5))
    finally:
        services.stop(worker)
    lat_events = setup.work / f"noop-rq-{label}-paced.jsonl"
    worker = services.rq_worker(setup, lat_events, name=f"noop-{label}-paced", simple=simple)
    try:
        _wait_rq_worker(connection, f"noop-{label}-paced")
        sent: dict[str, float] = {}
        start = time.monotonic()
        for i in range(int(per_s * duration_s)):
            time.sleep(max(0.0, start + i / per_s - time.monotonic()))
            job_id = _new_id()
            sent[job_id] = time.time()
            queue.enqueue(PEER_NOOP, job_id)
        starts = _wait_count(lat_events, len(sent), worker, timeout_s=30, ids=set(sent))
        result.latency_ms = _latencies(sent, starts)
    finally:
        services.stop(worker)
    return result


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _wait_rq_worker(connection: redis.Redis, name: str, timeout_s: float = 30) -> None:
    """Wait until the RQ worker ``name`` has registered (it is then listening)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if connection.exists(f"rq:worker:{name}"):
            time.sleep(0.2)  # registered just before it blocks on the queue
            return
        time.sleep(0.05)
    raise RuntimeError(f"rq worker {name} did not register within {timeout_s:g} s")


# -- reclaim -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Reclaim:
    """Seconds from ``kill -9`` to the job restarting elsewhere, and to it completing."""

    restarted_s: list[float] = field(default_factory=list)
    completed_s: list[float] = field(default_factory=list)
    skipped: int = 0
    """Trials where the render finished before the kill landed (not counted)."""


def reclaim(setup: Setup, trials: int, spec: ReportSpec) -> Reclaim:
    """``trials`` times: kill -9 the consumer rendering a job; time the survivor's takeover."""
    setup.flush()
    result = Reclaim()
    keys = Keys("agentlink")
    client = redis.Redis.from_url(setup.redis_url, decode_responses=True)
    consumers = {slot: services.start_consumer(setup, slot) for slot in (1, 2)}
    try:
        for slot in consumers:
            services.wait_logged(setup.work / f"consumer-{slot}.log", "consumer.started")
        attempts = 0
        while len(result.restarted_s) < trials and attempts < trials * 3:
            attempts += 1
            (job_id,) = services.enqueue_ours(setup.redis_url, [spec])
            owner = _wait_field(client, keys.job(job_id), "consumer", bool, 30)
            slot = next(s for s in consumers if services.consumer_name(s) == owner)
            consumers[slot].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            consumers[slot].wait(10)
            if client.hget(keys.job(job_id), "status") == "completed":
                result.skipped += 1
            else:
                _wait_field(client, keys.job(job_id), "consumer", lambda v, o=owner: v != o, 60)
                result.restarted_s.append(time.monotonic() - killed_at)
                _wait_field(client, keys.job(job_id), "status", lambda v: v == "completed", 60)
                result.completed_s.append(time.monotonic() - killed_at)
            log = setup.work / f"consumer-{slot}.log"
            started = services.logged_count(log.read_text(errors="replace"), "consumer.started")
            consumers[slot] = services.start_consumer(setup, slot)
            services.wait_logged(log, "consumer.started", count=started + 1)
    finally:
        for process in consumers.values():
            services.stop(process)
    return result


def _wait_field(
    client: redis.Redis, key: str, name: str, ok: Any, timeout_s: float, poll_s: float = 0.005
) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = client.hget(key, name)
        if ok(value):
            return str(value)
        time.sleep(poll_s)
    raise RuntimeError(f"{key} {name} did not change within {timeout_s:g} s")


def summary_ms(values: list[float]) -> tuple[float, float]:
    """p50 and p99."""
    return median(values), quantile(values, 0.99)
