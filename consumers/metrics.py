"""Every Prometheus metric a consumer process counts: jobs, their timings, its memory.

Served by each consumer process on ``AGENTLINK_METRICS_PORT + slot - 1`` from its own
registry, so the API never exposes consumer metrics as idle zeros (nor the reverse). Names
use base units (seconds, bytes) and labels of low cardinality: report kind, outcome,
reason, storage — never a job id or a suburb.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
)

# No ``*_created`` series next to every counter and histogram: they double the series count
# and nothing here reads them (Prometheus detects counter resets by itself).
disable_created_metrics()  # type: ignore[no-untyped-call]

CONSUMER_REGISTRY = CollectorRegistry(auto_describe=True)
# process_resident_memory_bytes, process_cpu_seconds_total, … of the consumer process.
ProcessCollector(registry=CONSUMER_REGISTRY)

JOBS_FINISHED = Counter(
    "agentlink_jobs_total",
    "Jobs finished by this consumer, by kind and outcome (completed, failed, dead).",
    ["kind", "outcome"],
    registry=CONSUMER_REGISTRY,
)
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
QUEUE_WAIT = Histogram(
    "agentlink_queue_wait_seconds",
    "Time from submission (entry id) to a consumer starting the job's first attempt.",
    buckets=_DURATION_BUCKETS,
    registry=CONSUMER_REGISTRY,
)
RENDER_SECONDS = Histogram(
    "agentlink_render_seconds",
    "Time to load data and render one PDF.",
    ["kind"],
    buckets=_DURATION_BUCKETS,
    registry=CONSUMER_REGISTRY,
)
UPLOAD_SECONDS = Histogram(
    "agentlink_upload_seconds",
    "Time to store one PDF.",
    ["storage"],
    buckets=_DURATION_BUCKETS,
    registry=CONSUMER_REGISTRY,
)
JOB_SECONDS = Histogram(
    "agentlink_job_seconds",
    "Time from submission to the job's completion being recorded.",
    ["kind"],
    buckets=_DURATION_BUCKETS,
    registry=CONSUMER_REGISTRY,
)
CONSUMER_BUSY = Gauge(
    "agentlink_consumer_busy",
    "1 while this consumer holds a job (rendering, storing, or waiting to retry it).",
    registry=CONSUMER_REGISTRY,
)
RECLAIMED = Counter(
    "agentlink_reclaimed_total",
    "Entries this consumer took over from a stalled consumer (XAUTOCLAIM).",
    registry=CONSUMER_REGISTRY,
)
LEASES_LOST = Counter(
    "agentlink_leases_lost_total",
    "Jobs this consumer stopped because another consumer had taken their entry over.",
    registry=CONSUMER_REGISTRY,
)
DEAD_LETTERS = Counter(
    "agentlink_dead_letters_total",
    "Entries this consumer moved to the dead letters, by reason (attempts, deliveries, malformed).",
    ["reason"],
    registry=CONSUMER_REGISTRY,
)
ENTRIES_LOST = Counter(
    "agentlink_entries_lost_total",
    "Pending entries whose payload was deleted from the stream before they were processed.",
    registry=CONSUMER_REGISTRY,
)
RETRIES = Counter(
    "agentlink_retries_total",
    "Attempts that failed with a transient error and were retried.",
    ["kind"],
    registry=CONSUMER_REGISTRY,
)
RENDERS_KILLED = Counter(
    "agentlink_renders_killed_total",
    "Render processes that ended mid-render, by reason: timeout (killed past "
    "AGENTLINK_RENDER_TIMEOUT_S), abandoned (killed: lease lost or shutdown), crashed "
    "(died on their own, e.g. the kernel's OOM killer).",
    ["reason"],
    registry=CONSUMER_REGISTRY,
)
RENDER_RECYCLES = Counter(
    "agentlink_render_recycles_total",
    "Render processes replaced after AGENTLINK_RENDER_MAX_JOBS reports (jobs) or above "
    "AGENTLINK_RENDER_MAX_RSS_MB (memory).",
    ["reason"],
    registry=CONSUMER_REGISTRY,
)
RESIDENT_MEMORY = Gauge(
    "agentlink_resident_memory_bytes",
    "Resident memory of this worker's processes: the consumer and its render child.",
    ["process"],
    registry=CONSUMER_REGISTRY,
)
STORAGE_PAUSED = Gauge(
    "agentlink_storage_paused",
    "1 while this consumer holds its job because the storage rejects our configuration.",
    registry=CONSUMER_REGISTRY,
)
CONSUMER_INFO = Info(
    "agentlink_consumer",
    "The consumer name this process uses in the consumer group.",
    registry=CONSUMER_REGISTRY,
)
