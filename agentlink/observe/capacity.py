"""The scaling arithmetic: how many workers the load needs, how long a new job would wait,
and how many workers fit in the host's memory.

Pure functions over numbers the API reads from Redis at scrape time
(``agentlink.observe.stream_state``), so they can be checked by hand; ops/README.md's "Metrics
and scaling" section explains how to read them.

- **Arrival rate** (jobs/s): entries added to the stream (``XINFO STREAM``'s
  ``entries-added``, kept by Redis itself, so the request path pays nothing for it) over
  the scaling window.
- **Service time** (s/job): seconds consumers were busy per job they finished, over the
  same window (consumers add both to ``<prefix>:stats:work`` as each job ends).
- **Workers needed** = ceil(arrival rate x service time / target utilisation)
  (``AGENTLINK_TARGET_UTILISATION``), at least 1 while anything waits or arrives. Arrival
  rate x service time is the average number of workers the load keeps busy (Little's law);
  dividing by a target below 1 keeps the headroom that keeps queue waits short.
- **Estimated wait** of a job submitted now = (work left on the jobs in progress + waiting
  jobs x service time) / consumers taking work; 0 while a consumer is idle and nothing
  waits ahead of it; +Inf when no consumer takes work.
- **Memory fit** = live workers + floor((MemAvailable - reserve - what running workers may
  still grow to their peak) / the largest peak footprint of one worker), a worker's
  footprint being the consumer's RSS plus the peak RSS of its render child.

Every worker is assumed to run on the host whose ``/proc/meminfo`` the API reads: one
machine, as on the CX22 of ``docker-compose.yml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from agentlink.stream.keys import Keys

MIN_SPAN_S = 5.0
"""Rates over less history than this are too noisy to report."""
_EPSILON = 1e-9


def work_key(keys: Keys) -> str:
    """Hash of cumulative busy seconds (``busy_s``) and finished jobs (``done``)."""
    return keys.work_stats


def samples_key(keys: Keys) -> str:
    """Sorted set of counter samples (``Sample.encode()``) scored by their unix time."""
    return keys.stat_samples


@dataclass(frozen=True, slots=True)
class Sample:
    """The cumulative counters behind the rates, as seen at one moment."""

    at_s: float
    added: int
    """Entries ever added to the stream."""
    busy_s: float
    """Seconds consumers have been busy with jobs, summed."""
    done: int
    """Jobs consumers have finished (completed, failed or dead after attempts)."""

    def encode(self) -> str:
        """A sorted-set member: ``"<at_s> <added> <busy_s> <done>"``."""
        return f"{self.at_s:.3f} {self.added} {self.busy_s:.3f} {self.done}"

    @classmethod
    def decode(cls, raw: str) -> Sample | None:
        """The sample a member encodes (None if unreadable)."""
        try:
            at_s, added, busy_s, done = raw.split()
            return cls(float(at_s), int(added), float(busy_s), int(done))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Rates:
    """Arrivals and service time over the history available (up to the window)."""

    span_s: float
    arrivals_per_s: float
    service_s: float | None
    """Mean busy seconds per finished job; None until a job has finished."""


def rates(now: Sample, then: Sample | None) -> Rates:
    """Arrival rate and service time between an older sample and now.

    S falls back to the all-time mean when no job finished within the window, so a quiet
    hour does not forget what a job costs.
    """
    all_time = now.busy_s / now.done if now.done > 0 else None
    if then is None or now.at_s - then.at_s < MIN_SPAN_S:
        return Rates(span_s=0.0, arrivals_per_s=0.0, service_s=all_time)
    span_s = now.at_s - then.at_s
    # A stream deleted and re-created restarts entries-added: count nothing, never negative.
    arrivals = max(0, now.added - then.added) / span_s
    done = now.done - then.done
    busy = now.busy_s - then.busy_s
    service_s = busy / done if done > 0 and busy >= 0 else all_time
    return Rates(span_s=span_s, arrivals_per_s=arrivals, service_s=service_s)


def workers_needed(
    arrivals_per_s: float, service_s: float | None, target_utilisation: float, waiting: int
) -> int:
    """ceil(arrivals x service time / target utilisation); at least 1 while jobs wait or arrive."""
    floor = 1 if waiting > 0 or arrivals_per_s > 0 else 0
    if service_s is None:
        return floor
    load = arrivals_per_s * service_s / target_utilisation
    return max(floor, math.ceil(load - _EPSILON))


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """What a live consumer's heartbeat hash says about it."""

    name: str
    state: str
    """``idle``, ``busy`` or ``paused: …`` (holding its job while the storage is broken)."""
    job_elapsed_s: float | None = None
    rss_bytes: int = 0
    render_rss_bytes: int = 0
    render_peak_rss_bytes: int = 0
    job: str | None = None
    """The job it works on (the dashboard shows it)."""

    @property
    def busy(self) -> bool:
        """Working on a job."""
        return self.state == "busy"

    @property
    def paused(self) -> bool:
        """Holding a job but taking no work until the storage accepts us again."""
        return self.state.startswith("paused")


def waiting_jobs(lag: int, pending: int, consumers: list[ConsumerState]) -> int:
    """Jobs waiting for a consumer: never delivered, plus pending entries nobody live works
    on (their consumer died; they will be reclaimed)."""
    held = sum(1 for c in consumers if c.busy or c.paused)
    return lag + max(0, pending - held)


def estimated_wait_s(
    waiting: int, consumers: list[ConsumerState], service_s: float | None
) -> float:
    """Seconds until a consumer would start a job submitted now (see the module docstring)."""
    taking = [c for c in consumers if not c.paused]
    if not taking:
        return math.inf
    idle = sum(1 for c in taking if not c.busy)
    if waiting < idle:
        return 0.0
    if service_s is None:
        return math.nan
    in_progress = sum(max(0.0, service_s - (c.job_elapsed_s or 0.0)) for c in taking if c.busy)
    return (in_progress + waiting * service_s) / len(taking)


@dataclass(frozen=True, slots=True)
class MemoryFit:
    """How many workers the host's memory holds at their measured peak."""

    workers: int
    peak_bytes: int
    """The largest footprint of one worker: consumer RSS + its render child's peak RSS."""


def memory_fit(
    consumers: list[ConsumerState], available_bytes: int, reserve_bytes: int
) -> MemoryFit | None:
    """Workers that fit in memory (None until a live consumer reports its memory)."""
    measured = [c for c in consumers if c.rss_bytes > 0]
    if not measured:
        return None
    peak = max(c.rss_bytes + max(c.render_peak_rss_bytes, c.render_rss_bytes) for c in measured)
    growth = sum(max(0, c.render_peak_rss_bytes - c.render_rss_bytes) for c in measured)
    spare = available_bytes - reserve_bytes - growth
    return MemoryFit(workers=len(measured) + max(0, spare // peak), peak_bytes=peak)


@dataclass(frozen=True, slots=True)
class HostMemory:
    """``/proc/meminfo``'s totals, in bytes."""

    total_bytes: int
    available_bytes: int


def host_memory(path: Path = Path("/proc/meminfo")) -> HostMemory | None:
    """The host's memory (inside a container: the host's, as Docker shows /proc/meminfo)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    if "MemTotal" not in values or "MemAvailable" not in values:
        return None
    return HostMemory(total_bytes=values["MemTotal"], available_bytes=values["MemAvailable"])
