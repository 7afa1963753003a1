"""Load for the front door: ``wrk`` at full speed, a burst of simultaneous POSTs, and a
paced open-loop client.

Each side gets byte-for-byte the same requests: a JSON body for Manly NSW, kinds
alternating, an ``Authorization`` header with the bench's API key and a fresh
``Idempotency-Key`` per request (the peer ignores both headers, as the old service did).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BODY = '{"suburb": "Manly", "state": "NSW"}'
PATHS = ("/api/generate-agents-report", "/api/generate-agency-report")

_WRK_LUA = """-- written by bench.load: POSTs with a fresh Idempotency-Key each, statuses counted
local paths = {"%(agents)s", "%(agency)s"}
local body = '%(body)s'
local auth = "Bearer %(key)s"
local threads = {}
local counter = 0
local prefix = ""
statuses = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tid)
  prefix = string.format("wrk-%%d-%%d-%%d-", tid, os.time(), math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = auth
  headers["Idempotency-Key"] = prefix .. counter
  return wrk.format("POST", paths[counter %% 2 + 1], headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      merged[tostring(status)] = (merged[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%%s": %%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %%d, "requests": %%d, "p50_us": %%d, "p90_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"timeout": %%d, "statuses": {%%s}}\\n',
    summary.duration, summary.requests, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout,
    table.concat(parts, ", ")))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One ``wrk`` run: counts by status, latency of every response (ms)."""

    duration_s: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def rate(self, status: int) -> float:
        """Responses with ``status`` per second."""
        return self.statuses.get(status, 0) / self.duration_s

    def other(self, accepted: int) -> dict[int, int]:
        """Counts of every status but ``accepted``."""
        return {s: n for s, n in sorted(self.statuses.items()) if s != accepted}


def run_wrk(
    base_url: str,
    api_key: str,
    work: Path,
    *,
    threads: int = 2,
    connections: int = 50,
    duration_s: int = 8,
) -> WrkResult:
    """``wrk -t2 -c50 -d8s`` with the POST script; raises if wrk fails."""
    script = work / "post.lua"
    script.write_text(
        _WRK_LUA % {"agents": PATHS[0], "agency": PATHS[1], "body": BODY, "key": api_key}
    )
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        duration_s=data["duration_us"] / 1e6,
        statuses={int(k): v for k, v in data["statuses"].items()},
        socket_errors={k: data[k] for k in ("connect", "read", "write", "timeout") if data[k]},
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


# -- burst --------------------------------------------------------------------------------------


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(slots=True)
class BurstResult:
    """``n`` simultaneous POSTs, one connection each."""

    n: int
    statuses: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    """Refusals by status and the first words of their message."""
    failures: Counter[str] = field(default_factory=Counter)
    """Requests that got no HTTP answer, by exception."""
    answered_s: float = float("nan")
    """First request sent → last answer received."""
    queued_s: float = float("nan")
    """First request sent → the queue length reached its final count."""
    queued: int = 0
    """New entries in the queue after the burst."""


def _request_bytes(port: int, path: str, api_key: str) -> bytes:
    body = BODY.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: burst-{uuid.uuid4()}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _reason(status: int, body: bytes) -> str:
    """A short, stable label for a refusal: status and the start of its message."""
    text = body.decode("utf-8", "replace")
    with contextlib.suppress(ValueError, AttributeError):
        data = json.loads(text)
        text = str(data.get("detail") or data.get("title") or data)
    return f"{status} {' '.join(text.split()[:6])}"


async def _burst(port: int, n: int, api_key: str, timeout_s: float) -> BurstResult:
    result = BurstResult(n=n)
    connected: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | BaseException] = list(
        await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(n)),
            return_exceptions=True,
        )
    )
    requests = [_request_bytes(port, PATHS[i % 2], api_key) for i in range(n)]
    last_answer = 0.0

    async def one(index: int) -> None:
        nonlocal last_answer
        pair = connected[index]
        if isinstance(pair, BaseException):
            result.failures[f"connect: {type(pair).__name__}"] += 1
            return
        reader, writer = pair
        try:
            writer.write(requests[index])
            raw = await asyncio.wait_for(reader.read(), timeout_s)
            last_answer = max(last_answer, time.monotonic())
            head, _, body = raw.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            result.statuses[status] += 1
            if not 200 <= status < 300:
                result.reasons[_reason(status, body)] += 1
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            result.failures[type(exc).__name__] += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    result.answered_s = last_answer - started if last_answer else float("nan")
    return result


def burst(
    port: int, n: int, api_key: str, queue_length: Callable[[], int], timeout_s: float = 120
) -> BurstResult:
    """Open ``n`` connections, then send one POST on each at once; watch the queue grow.

    ``queue_length`` (stream length, or RQ queue length) is polled from a thread every
    2 ms until the burst is answered and the length has stopped changing.
    """
    before = queue_length()
    changes: list[tuple[float, int]] = [(time.monotonic(), before)]
    finished = threading.Event()

    def watch() -> None:
        quiet_since = None
        while True:
            length = queue_length()
            now = time.monotonic()
            if length != changes[-1][1]:
                changes.append((now, length))
                quiet_since = None
            elif finished.is_set():
                quiet_since = quiet_since or now
                if now - quiet_since > 1.0:
                    return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, name="queue-watch", daemon=True)
    started = time.monotonic()
    watcher.start()
    try:
        result = asyncio.run(_burst(port, n, api_key, timeout_s))
    finally:
        finished.set()
        watcher.join(30)
    result.queued = changes[-1][1] - before
    result.queued_s = changes[-1][0] - started if result.queued else float("nan")
    return result


# -- paced open-loop client ---------------------------------------------------------------------


@dataclass(slots=True)
class PacedResult:
    """Latency (ms, from the intended send time) and errors of a paced run."""

    post_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


async def _paced(
    base_url: str, api_key: str, posts_per_s: float, gets_per_s: float, duration_s: float
) -> PacedResult:
    result = PacedResult()
    job_ids: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def post(at: float, index: int) -> None:
            key = {"Idempotency-Key": f"paced-{uuid.uuid4()}"}
            try:
                response = await client.post(
                    PATHS[index % 2],
                    content=BODY,
                    headers={**headers, **key, "Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                result.errors[f"POST {type(exc).__name__}"] += 1
                return
            result.post_ms.append((time.monotonic() - at) * 1000)
            if response.is_success:
                job_ids.append(response.json()["job_id"])
            else:
                result.errors[f"POST {response.status_code}"] += 1

        async def get(at: float) -> None:
            if not job_ids:
                return
            try:
                response = await client.get(f"/api/job-status/{job_ids[-1]}", headers=headers)
            except httpx.HTTPError as exc:
                result.errors[f"GET {type(exc).__name__}"] += 1
                return
            result.get_ms.append((time.monotonic() - at) * 1000)
            if not response.is_success:
                result.errors[f"GET {response.status_code}"] += 1

        schedule = sorted(
            [(i / posts_per_s, "post", i) for i in range(int(duration_s * posts_per_s))]
            + [
                (0.5 / gets_per_s + i / gets_per_s, "get", i)
                for i in range(int(duration_s * gets_per_s))
            ]
        )
        tasks = []
        start = time.monotonic()
        for offset, kind, index in schedule:
            at = start + offset
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            tasks.append(asyncio.create_task(post(at, index) if kind == "post" else get(at)))
        await asyncio.gather(*tasks)
    return result


def paced(
    base_url: str,
    api_key: str,
    *,
    posts_per_s: float = 20,
    gets_per_s: float = 20,
    duration_s: float = 20,
) -> PacedResult:
    """Send POSTs and status GETs at a steady rate whatever the answers take (open loop)."""
    return asyncio.run(_paced(base_url, api_key, posts_per_s, gets_per_s, duration_s))
