"""How ``bench.frontdoor`` starts each side's processes: the one place that knows the commands.

AgentLink runs from the project's own virtualenv (``.venv``, as ``make`` installs it), the
peer (FastAPI + RQ) from the bench virtualenv (``.venv-bench``) that also runs the bench.
When the way AgentLink's API or consumers start changes, change ``api_command``,
``api_env`` and ``consumer_command`` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from agentlink.admin.devredis import free_port
from agentlink.api.store import open_store
from agentlink.jobs import ReportSpec
from agentlink.stream.keys import Keys
from bench.harness import ROOT, Api, Processes, child_pids, clean_env, memory_kib, wait_for_health

API_KEY = "bench-key-0123456789abcdef"
RATE_LIMIT = 1_000_000
"""Requests per 60 s window per API key: on (the guard runs on every request), and sized so
the bench's load stays under it (GCRA: a burst of this many, then 16,667 per second).
Not higher: above ~10^8 the limiter's interval drops below the precision of a Lua double
at epoch milliseconds, and every request fails (``SET … PX 0``)."""
MAX_WAIT_S = 10_000_000
"""``AGENTLINK_MAX_WAIT_S`` in the bench: on (the backlog check runs on every POST) and sized
so that thousands of queued jobs with no consumer stay under it. With the default (3600 s)
and no service time measured yet (5 s per job assumed), the API refuses from the 721st
waiting job on: a documented limit, not what these figures are about."""
PEER_QUEUE = "reports"


@dataclass(frozen=True, slots=True)
class Setup:
    """What every process of one run shares."""

    processes: Processes
    work: Path
    redis_url: str
    ours_python: str
    api_workers: int = 2
    max_wait_s: float = MAX_WAIT_S

    def flush(self) -> None:
        """Empty Redis between measurements (every process using it is stopped first)."""
        with redis.Redis.from_url(self.redis_url) as client:
            client.flushall()


# -- AgentLink -------------------------------------------------------------------------------


def api_command(port: int, workers: int) -> list[str]:
    """``agentlink api`` on ``port``; ``--workers N`` only for more than one process."""
    command = ["-m", "agentlink", "api", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    return command


def api_env(setup: Setup) -> dict[str, str]:
    """API keys on, rate limit and backpressure on (sized above the load), and logs as in
    production: one JSON line per accepted job."""
    return clean_env(
        REDIS_URL=setup.redis_url,
        AGENTLINK_API_KEYS=API_KEY,
        AGENTLINK_RATE_LIMIT=str(RATE_LIMIT),
        AGENTLINK_MAX_WAIT_S=f"{setup.max_wait_s:g}",
        AGENTLINK_OUTPUT_DIR=str(setup.work / "reports"),
        AGENTLINK_LOG_FORMAT="json",
        AGENTLINK_LOG_LEVEL="info",
    )


def consumer_command(slot: int, *, noop_events: Path | None = None) -> list[str]:
    """One consumer process; with ``noop_events`` the no-op one (``bench.noop_consumer``)."""
    if noop_events is not None:
        return ["-m", "bench.noop_consumer", "--slot", str(slot), "--events", str(noop_events)]
    return ["-m", "consumers", "--slot", str(slot)]


def consumer_env(setup: Setup) -> dict[str, str]:
    """Default lease and limits; JSON logs, which the bench reads."""
    return clean_env(
        REDIS_URL=setup.redis_url,
        AGENTLINK_OUTPUT_DIR=str(setup.work / "reports"),
        AGENTLINK_CONSUMER_NAME="bench",
        AGENTLINK_LOG_FORMAT="json",
    )


def consumer_name(slot: int) -> str:
    """The consumer name ``consumer_env`` gives slot ``slot``."""
    return f"bench-{slot}"


def start_api(setup: Setup) -> Api:
    """Start AgentLink's API and wait until ``/health`` answers."""
    port = free_port()
    process = setup.processes.start(
        api_command(port, setup.api_workers),
        api_env(setup),
        f"api-{port}.log",
        python=setup.ours_python,
    )
    api = Api(process, port)
    with httpx.Client(base_url=api.base_url, timeout=5) as client:
        wait_for_health(client, api)
    return api


def start_consumer(
    setup: Setup, slot: int, *, noop_events: Path | None = None, log_name: str = ""
) -> subprocess.Popen[bytes]:
    """Start one consumer (real, or no-op with ``noop_events``)."""
    return setup.processes.start(
        consumer_command(slot, noop_events=noop_events),
        consumer_env(setup),
        log_name or f"consumer-{slot}.log",
        python=setup.ours_python,
    )


def logged_count(text: str, event: str) -> int:
    """How many JSON log lines in ``text`` say ``"event":"<event>"`` (with or without a
    space after the colon)."""
    return len(re.findall(rf'"event":\s?"{re.escape(event)}"', text))


def wait_logged(log: Path, event: str, timeout_s: float = 60.0, count: int = 1) -> None:
    """Wait until ``log`` holds ``count`` lines of ``event``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if logged_count(log.read_text(errors="replace"), event) >= count:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{log.name}: no {event} within {timeout_s:g} s")


def enqueue_ours(redis_url: str, specs: list[ReportSpec]) -> list[str]:
    """Queue ``specs`` straight into Redis with the API's own enqueue step (the job hash and
    the XADD, in the API's one script), 50 at a time; returns the job ids."""

    async def fill() -> list[str]:
        ids: list[str] = []
        async with open_store(redis_url, Keys("agentlink")) as store:
            for start in range(0, len(specs), 50):
                batch = specs[start : start + 50]
                accepted = await asyncio.gather(*(store.enqueue(spec) for spec in batch))
                ids.extend(a.job_id for a in accepted)
        return ids

    return asyncio.run(fill())


def paced_enqueue_ours(
    redis_url: str, spec: ReportSpec, per_s: float, duration_s: float
) -> dict[str, float]:
    """Queue ``spec`` at a steady ``per_s`` for ``duration_s``: job id → unix time just
    before its enqueue call."""

    async def pace() -> dict[str, float]:
        sent: dict[str, float] = {}
        async with open_store(redis_url, Keys("agentlink")) as store:
            await store.enqueue(spec)  # connects and loads the script before the clock runs
            start = time.monotonic()
            for i in range(int(per_s * duration_s)):
                await asyncio.sleep(max(0.0, start + i / per_s - time.monotonic()))
                at = time.time()
                accepted = await store.enqueue(spec)
                sent[accepted.job_id] = at
        return sent

    return asyncio.run(pace())


# -- the peer: FastAPI + RQ -------------------------------------------------------------------


def peer_env(setup: Setup, events: Path | None = None) -> dict[str, str]:
    """What the peer's API and workers read."""
    env = clean_env(
        PEER_REDIS_URL=setup.redis_url, PEER_OUTPUT_DIR=str(setup.work / "peer-reports")
    )
    (setup.work / "peer-reports").mkdir(exist_ok=True)
    if events is not None:
        env["PEER_EVENTS_FILE"] = str(events)
    return env


def start_peer_api(setup: Setup, handlers: str) -> Api:
    """uvicorn serving ``bench.peer.app`` in one process, ``def`` or ``async def`` handlers,
    logging as uvicorn does by default: one access line per request."""
    port = free_port()
    command = ["-m", "uvicorn", "bench.peer.app:app", "--port", str(port)]
    env = {**peer_env(setup), "PEER_HANDLERS": handlers}
    process = setup.processes.start(command, env, f"peer-api-{handlers}-{port}.log")
    api = Api(process, port)
    with httpx.Client(base_url=api.base_url, timeout=5) as client:
        wait_for_health(client, api)
    return api


def rq_worker(
    setup: Setup, events: Path, *, name: str, simple: bool = False, burst: bool = False
) -> subprocess.Popen[bytes]:
    """``rq worker`` as its command line runs it (the no-op figures)."""
    command = ["-m", "rq.cli", "worker", "-u", setup.redis_url, "-n", name]
    if burst:
        command.append("--burst")
    if simple:
        command += ["--worker-class", "rq.worker.SimpleWorker"]
    command.append(PEER_QUEUE)
    return setup.processes.start(command, peer_env(setup, events), f"rq-{name}.log")


def rq_render_worker(setup: Setup, events: Path, *, name: str) -> subprocess.Popen[bytes]:
    """An RQ worker that imported the report code before forking (``bench.peer.worker``)."""
    command = ["-m", "bench.peer.worker", "--url", setup.redis_url, "--name", name]
    return setup.processes.start(command, peer_env(setup, events), f"rq-{name}.log")


def stop(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def tree_rss_kib(pid: int) -> int:
    """VmRSS of a process and all its descendants, KiB (0 if it is gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        reading = memory_kib(current)
        if reading is not None:
            total += reading[0]
            todo.extend(child_pids(current))
    return total


def sched_s(pid: int, *, descendants: bool = True) -> tuple[float, float]:
    """CPU time and time spent waiting for a CPU (run queue), in seconds, of a process (and
    its descendants), all threads: ``/proc/<pid>/task/*/schedstat``."""
    cpu = wait = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        for stat in Path(f"/proc/{current}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().split()
                cpu += int(fields[0]) / 1e9
                wait += int(fields[1]) / 1e9
        if descendants:
            todo.extend(child_pids(current))
    return cpu, wait


def default_ours_python() -> str:
    """The project's virtualenv interpreter if there is one, else this one."""
    candidate = ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable
