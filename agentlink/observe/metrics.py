"""Every Prometheus metric the API counts: requests, by route and status.

Served on the API's ``/metrics`` together with the stream state read from Redis at scrape
time (``agentlink.observe.stream_state``). Consumer processes count in a registry of their own
(``consumers.metrics``), so neither exposes the other's metrics as idle zeros. Names use
base units (seconds, bytes) and labels of low cardinality: report kind, reason, route
template — never a job id or a suburb.

With several API processes (``agentlink api --workers N``) every process counts into files
of a shared folder (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``, set
by ``agentlink.api.server`` before the workers start) and a scrape, whichever process
answers it, sums them: ``exposed_registry()`` gives the right registry for either mode.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    multiprocess,
)

# No ``*_created`` series next to every counter and histogram: they double the series count
# and nothing here reads them (Prometheus detects counter resets by itself).
disable_created_metrics()  # type: ignore[no-untyped-call]

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
API_REGISTRY = CollectorRegistry(auto_describe=True)
# process_resident_memory_bytes, process_cpu_seconds_total, … of the API process (one
# process only: in multiprocess mode they would describe whichever process answered).
ProcessCollector(registry=API_REGISTRY)

# -- the API -----------------------------------------------------------------------------------

REQUESTS_ACCEPTED = Counter(
    "agentlink_requests_accepted_total",
    "Report requests accepted and queued, by report kind.",
    ["kind"],
    registry=API_REGISTRY,
)
REQUESTS_REJECTED = Counter(
    "agentlink_requests_rejected_total",
    "Report requests refused, by reason (invalid, conflict, rate_limited, overloaded, busy, "
    "unavailable).",
    ["reason"],
    registry=API_REGISTRY,
)
HTTP_REQUESTS = Counter(
    "agentlink_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=API_REGISTRY,
)
HTTP_SECONDS = Histogram(
    "agentlink_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=API_REGISTRY,
)


def exposed_registry() -> CollectorRegistry:
    """The registry a scrape exposes: this process's, or, with several API processes, a
    fresh one that sums the files of every process (built per scrape, as the multiprocess
    collector reads the files when it collects)."""
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if not directory:
        return API_REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry
