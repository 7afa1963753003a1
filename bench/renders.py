"""Real renders on both sides: API latency under render load, reports per minute, memory.

One run per side: the queue is pre-filled with the job mix, two workers render flat out
(two of our consumers, or two RQ workers), and once each has finished a few reports a paced
client sends 20 POST/s + 20 status GET/s to the API for 20 s. Then:

- **reports per minute**: completions in the window from the end of the API load until the
  first worker's last completion (both are busy all that window), x 60 ÷ its length;
- **memory** (ours): each consumer's process tree — the consumer and its render child —
  is read from ``/proc`` every 0.2 s, with the
  consumer's count of completed reports (its ``report.completed`` log lines). The render
  child is replaced every 100 reports (``AGENTLINK_RENDER_MAX_JOBS``), so "RSS at report
  n" is the peak over reports n - 99 … n: one whole render-child lifetime.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rq import Queue

from agentlink.jobs import ReportSpec
from bench import load, services
from bench.harness import child_pids, epoch_s, memory_kib
from bench.services import Setup

PEER_RENDER = "bench.peer.jobs.render_job"


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a consumer's process tree."""

    completed: int
    consumer_kib: int
    children_kib: int

    @property
    def total_kib(self) -> int:
        """Consumer + render child + helpers."""
        return self.consumer_kib + self.children_kib


class TreeSampler(threading.Thread):
    """Reads each consumer's RSS and completed count every ``interval_s``."""

    def __init__(self, consumers: dict[int, tuple[int, Path]], interval_s: float = 0.2) -> None:
        super().__init__(name="tree-sampler", daemon=True)
        self.consumers = consumers  # slot -> (pid, log)
        self.interval_s = interval_s
        self.completed = dict.fromkeys(consumers, 0)
        self.samples: dict[int, list[Sample]] = {slot: [] for slot in consumers}
        self._offsets = dict.fromkeys(consumers, 0)
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until ``stop``."""
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        """Read every consumer once."""
        for slot, (pid, log) in self.consumers.items():
            with contextlib.suppress(OSError), log.open("rb") as handle:
                handle.seek(self._offsets[slot])
                chunk = handle.read()
                cut = chunk.rfind(b"\n") + 1
                self._offsets[slot] += cut
                lines = chunk[:cut].decode(errors="replace")
                self.completed[slot] += services.logged_count(lines, "report.completed")
            own = memory_kib(pid)
            if own is None:
                continue
            children = sum((memory_kib(c) or (0, 0))[0] for c in child_pids(pid))
            self.samples[slot].append(Sample(self.completed[slot], own[0], children))

    def stop(self) -> None:
        """Stop sampling."""
        self._stop_event.set()
        self.join(5)

    def at(self, slot: int, report: int, span: int = 100) -> Sample | None:
        """Peak over reports ``report - span + 1 … report``; the consumer's own RSS is the
        last sample's (it does not recycle)."""
        window = [s for s in self.samples[slot] if report - span < s.completed <= report]
        if not window:
            return None
        peak = max(window, key=lambda s: s.total_kib)
        return Sample(report, window[-1].consumer_kib, peak.total_kib - peak.consumer_kib)


@dataclass(slots=True)
class RenderRun:
    """One side's render figures."""

    paced: load.PacedResult
    api_cpu_s: float = float("nan")
    """CPU time of the API during the paced load."""
    api_wait_s: float = float("nan")
    """Time the API's threads waited for a CPU during the paced load."""
    client_wait_s: float = float("nan")
    """The same for this (the client's) process: a starved client inflates latencies too."""
    per_min: float = float("nan")
    window_s: float = float("nan")
    window_reports: int = 0
    memory: dict[int, dict[int, Sample | None]] = field(default_factory=dict)
    """slot → report number → sample (ours only)."""


def cycle(mix: list[ReportSpec], n: int) -> list[ReportSpec]:
    """``n`` specs, the mix repeated."""
    return [mix[i % len(mix)] for i in range(n)]


def _window_rate(
    finished: list[tuple[str, float]], window_start: float
) -> tuple[float, float, int]:
    """Per minute over (window_start, first worker's last finish]; also the length and count."""
    last: dict[str, float] = {}
    for worker, t in finished:
        last[worker] = max(last.get(worker, 0.0), t)
    end = min(last.values(), default=float("nan"))
    count = sum(1 for _, t in finished if window_start < t <= end)
    length = end - window_start
    return (count / length * 60 if length > 0 else float("nan")), length, count


def _wait(predicate: object, what: str, timeout_s: float, processes: list[object]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:g} s")
        for process in processes:
            if process.poll() is not None:  # type: ignore[attr-defined]
                raise RuntimeError(f"{what}: a worker exited ({process.returncode})")  # type: ignore[attr-defined]
        time.sleep(0.2)


def ours(
    setup: Setup, mix: list[ReportSpec], per_consumer: int, load_s: float, marks: list[int]
) -> RenderRun:
    """Two consumers on ``2 x per_consumer`` (+10 %) reports; API load; memory at ``marks``."""
    setup.flush()
    services.enqueue_ours(setup.redis_url, cycle(mix, int(2 * per_consumer * 1.1) + 20))
    api = services.start_api(setup)
    slots = (1, 2)
    consumers = {slot: services.start_consumer(setup, slot) for slot in slots}
    logs = {slot: setup.work / f"consumer-{slot}.log" for slot in slots}
    sampler = TreeSampler({s: (consumers[s].pid, logs[s]) for s in slots})
    sampler.start()
    procs: list[object] = list(consumers.values())
    try:
        _wait(lambda: min(sampler.completed.values()) >= 3, "warm-up", 120, procs)
        paced, sched = _paced_with_sched(api.process.pid, api.base_url, load_s)
        window_start = time.time()
        _wait(
            lambda: min(sampler.completed.values()) >= per_consumer,
            f"{per_consumer} reports per consumer",
            per_consumer * 3 + 120,
            procs,
        )
    finally:
        sampler.stop()
        for process in consumers.values():
            services.stop(process)
        services.stop(api.process)
    run = RenderRun(paced, *sched)
    run.per_min, run.window_s, run.window_reports = _window_rate(
        _finished_ours(setup.redis_url), window_start
    )
    run.memory = {slot: {m: sampler.at(slot, m) for m in marks} for slot in slots}
    return run


def _paced_with_sched(
    api_pid: int, base_url: str, load_s: float
) -> tuple[load.PacedResult, tuple[float, float, float]]:
    """The paced load, and the API's CPU time, its and this process's run-queue wait."""
    api_before, own_before = (
        services.sched_s(api_pid),
        services.sched_s(os.getpid(), descendants=False),
    )
    paced = load.paced(base_url, services.API_KEY, duration_s=load_s)
    api_after, own_after = (
        services.sched_s(api_pid),
        services.sched_s(os.getpid(), descendants=False),
    )
    return paced, (
        api_after[0] - api_before[0],
        api_after[1] - api_before[1],
        own_after[1] - own_before[1],
    )


def _finished_ours(url: str) -> list[tuple[str, float]]:
    """(consumer, finished_at) of every completed job, from the job hashes."""
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = list(client.scan_iter(match="agentlink:job:*", count=1000))
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, ["status", "consumer", "finished_at"])
        rows = pipe.execute()
    return [
        (consumer, t)
        for status, consumer, finished in rows
        if status == "completed" and (t := epoch_s(finished)) is not None
    ]


def peer(
    setup: Setup, mix: list[ReportSpec], jobs: int, load_s: float, after_s: float, handlers: str
) -> RenderRun:
    """Two RQ workers on ``jobs`` pre-filled reports; API load; then ``after_s`` of renders."""
    setup.flush()
    connection = redis.Redis.from_url(setup.redis_url)
    queue = Queue(services.PEER_QUEUE, connection=connection)
    specs = cycle(mix, jobs)
    with connection.pipeline() as pipe:
        for i in range(jobs):
            pipe.hset(f"job:prefill-{i}", "status", "processing")
        pipe.execute()
    with connection.pipeline() as pipe:
        for i, spec in enumerate(specs):
            queue.enqueue(
                PEER_RENDER,
                f"prefill-{i}",
                spec.kind.value,
                spec.suburb,
                spec.state.value,
                pipeline=pipe,
            )
        pipe.execute()
    api = services.start_peer_api(setup, handlers)
    events = setup.work / "peer-renders.jsonl"
    workers = [services.rq_render_worker(setup, events, name=f"render-{i}") for i in (1, 2)]
    try:
        _wait(lambda: _per_worker_min(events) >= 3, "peer warm-up", 180, list(workers))
        paced, sched = _paced_with_sched(api.process.pid, api.base_url, load_s)
        window_start = time.time()
        time.sleep(after_s)
    finally:
        for process in workers:
            services.stop(process)
        services.stop(api.process)
    run = RenderRun(paced, *sched)
    run.per_min, run.window_s, run.window_reports = _window_rate(
        _finished_peer(events), window_start
    )
    return run


def _finished_peer(events: Path) -> list[tuple[str, float]]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for line in events.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError):
                event = json.loads(line)
                found.append((str(event["worker"]), float(event["end"])))
    return found


def _per_worker_min(events: Path) -> int:
    counts: dict[str, int] = {}
    for worker, _ in _finished_peer(events):
        counts[worker] = counts.get(worker, 0) + 1
    return min(counts.values()) if len(counts) >= 2 else 0
