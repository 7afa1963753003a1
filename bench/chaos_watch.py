"""The two observers of a chaos run: the HTTP client that submits jobs, and the job monitor.

``Submitter`` POSTs the planned jobs on a schedule from a few threads and retries the way a
Make.com scenario does (connection errors, 5xx), so a job counts as submitted only once the
API answered 202 with a job id. ``JobMonitor`` reads the job hashes straight from Redis a
few times a second and remembers every attempt it sees start (``started_at`` changes with
each attempt and would otherwise be overwritten) and the first time each job finished.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
import redis.exceptions

from agentlink.stream.keys import Keys
from bench.harness import epoch_s

FINISHED = frozenset({"completed", "failed", "dead"})
IN_PROGRESS = frozenset({"processing", "retrying"})
_MAX_TRIES = 60
_MAX_SUBMIT_S = 120.0  # per job, and past the end of the window for all of them
_MAX_SERVER_ERRORS = 3  # a 500 is a bug, not an outage: retry it a little only


@dataclass(slots=True)
class Submission:
    """One planned job and what its POST got."""

    index: int
    kind: str
    suburb: str
    state: str
    job_id: str | None = None
    accepted_at: float | None = None
    tries: int = 0
    unavailable: int = 0  # 502/503/504 answers (503 while Redis is down)
    server_errors: int = 0  # other 5xx answers (500: a bug in the API)
    throttled: int = 0  # 429 answers (the API's rate limit)
    transport_errors: int = 0  # connection refused, reset, timed out
    rejected: str = ""  # a 4xx answer, or why we gave up


class Submitter:
    """Submits ``plan`` spread over ``window_s`` from ``threads`` threads."""

    def __init__(
        self,
        base_url: str,
        plan: list[Submission],
        *,
        window_s: float,
        on_accepted: Any,
        threads: int = 4,
    ) -> None:
        self.plan = plan
        self.window_s = window_s
        self.on_accepted = on_accepted
        self.stop = threading.Event()
        self._client = httpx.Client(base_url=base_url, timeout=10)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="submit")
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        self._accepted: list[str] = []
        self._deadline = float("inf")

    def start(self) -> None:
        """Schedule every submission, evenly spread from now; all end by window + 120 s."""
        t0 = time.monotonic()
        gap = self.window_s / max(1, len(self.plan))
        self._deadline = t0 + self.window_s + _MAX_SUBMIT_S
        self._futures = [
            self._pool.submit(self._submit, sub, t0 + i * gap) for i, sub in enumerate(self.plan)
        ]

    def done(self) -> bool:
        """True when every submission got its final answer."""
        return all(f.done() for f in self._futures)

    def accepted_ids(self) -> list[str]:
        """Job ids the API acknowledged with 202 so far."""
        with self._lock:
            return list(self._accepted)

    def close(self) -> None:
        """Stop submitting (pending ones are abandoned) and close the HTTP client."""
        self.stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _submit(self, sub: Submission, at: float) -> None:
        if self.stop.wait(max(0.0, at - time.monotonic())):
            return
        deadline = min(time.monotonic() + _MAX_SUBMIT_S, self._deadline)
        delay = 0.2
        body = {"suburb": sub.suburb, "state": sub.state}
        while sub.tries < _MAX_TRIES and time.monotonic() < deadline and not self.stop.is_set():
            sub.tries += 1
            response: httpx.Response | None = None
            try:
                response = self._client.post(f"/api/generate-{sub.kind}-report", json=body)
            except httpx.TransportError:
                sub.transport_errors += 1
            else:
                if response.status_code == 202:
                    sub.job_id = str(response.json()["job_id"])
                    sub.accepted_at = time.time()
                    with self._lock:
                        self._accepted.append(sub.job_id)
                    self.on_accepted(sub.job_id)
                    return
                if response.status_code == 429:
                    sub.throttled += 1
                elif response.status_code < 500:
                    sub.rejected = f"HTTP {response.status_code}: {response.text[:200]}"
                    return
                elif response.status_code in {502, 503, 504}:
                    sub.unavailable += 1
                else:
                    sub.server_errors += 1
                    if sub.server_errors >= _MAX_SERVER_ERRORS:
                        sub.rejected = f"HTTP {response.status_code}: {response.text[:200]}"
                        return
            self.stop.wait(max(delay * random.uniform(0.5, 1.0), _retry_after_s(response)))
            delay = min(delay * 2, 2.0)
        sub.rejected = sub.rejected or f"gave up after {sub.tries} tries"


def _retry_after_s(response: httpx.Response | None) -> float:
    """The answer's Retry-After in seconds (at most 10: the run's clock is short), or 0."""
    if response is None:
        return 0.0
    try:
        return min(10.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


@dataclass(slots=True)
class Start:
    """One attempt of a job, as seen in its hash (or, failing that, in a consumer log)."""

    attempt: int
    consumer: str
    at: float
    source: str  # "hash" or "log"


@dataclass(slots=True)
class Track:
    """What the monitor knows about one job."""

    job_id: str
    status: str = ""
    consumer: str = ""
    starts: dict[int, Start] = field(default_factory=dict)
    first_finished_at: float | None = None  # the finished_at of the first outcome seen
    finished_seen_at: float | None = None  # when the monitor first saw it finished

    def add_start(self, start: Start) -> None:
        """Remember an attempt (the hash's own record wins over a log line)."""
        known = self.starts.get(start.attempt)
        if known is None or (known.source == "log" and start.source == "hash"):
            self.starts[start.attempt] = start


_FIELDS = ("status", "started_at", "finished_at", "consumer", "attempts")


class JobMonitor(threading.Thread):
    """Polls the hashes of unfinished jobs every ``interval_s`` (skips rounds Redis is down)."""

    def __init__(self, redis_url: str, keys: Keys, interval_s: float = 0.2) -> None:
        super().__init__(name="job-monitor", daemon=True)
        self.client: Any = redis.Redis.from_url(
            redis_url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1
        )
        self.keys = keys
        self.interval_s = interval_s
        self.tracks: dict[str, Track] = {}
        self.blind_rounds = 0
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def add(self, job_id: str) -> None:
        """Start watching a job."""
        with self._lock:
            self.tracks.setdefault(job_id, Track(job_id))

    def run(self) -> None:
        """Poll until ``stop``."""
        while not self._stop_event.wait(self.interval_s):
            self.poll()

    def stop(self) -> None:
        """Stop polling."""
        self._stop_event.set()
        self.join(5)
        self.client.close()

    def poll(self) -> None:
        """One round: HMGET every unfinished job in one pipeline."""
        with self._lock:
            ids = [t.job_id for t in self.tracks.values() if t.finished_seen_at is None]
        if not ids:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(self.keys.job(job_id), _FIELDS)
            rows = pipe.execute()
        except redis.exceptions.RedisError:
            self.blind_rounds += 1
            return
        now = time.time()
        with self._lock:
            for job_id, (status, started_at, finished_at, consumer, attempts) in zip(
                ids, rows, strict=True
            ):
                track = self.tracks[job_id]
                track.status, track.consumer = status or "", consumer or ""
                started = epoch_s(started_at)
                if started is not None and attempts:
                    track.add_start(Start(int(attempts), consumer or "", started, "hash"))
                if status in FINISHED:
                    track.finished_seen_at = now
                    track.first_finished_at = epoch_s(finished_at)

    def in_progress_on(self, consumer: str) -> set[str]:
        """Jobs whose last seen state says ``consumer`` is working on them."""
        with self._lock:
            return {
                t.job_id
                for t in self.tracks.values()
                if t.consumer == consumer and t.status in IN_PROGRESS
            }

    def completed_ids(self) -> set[str]:
        """Jobs seen completed."""
        with self._lock:
            return {t.job_id for t in self.tracks.values() if t.status == "completed"}

    def unfinished(self, job_ids: list[str]) -> int:
        """How many of ``job_ids`` have not been seen finished yet."""
        with self._lock:
            return sum(
                1
                for j in job_ids
                if j not in self.tracks or self.tracks[j].finished_seen_at is None
            )

    def last_finished_seen_at(self) -> float | None:
        """When the monitor saw the most recent job finish."""
        with self._lock:
            seen = [t.finished_seen_at for t in self.tracks.values() if t.finished_seen_at]
        return max(seen, default=None)
