"""Every Prometheus metric object of AgentLink, in one registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS_ACCEPTED = Counter(
    "agentlink_requests_accepted_total",
    "Report requests accepted and queued, by report kind.",
    ["kind"],
    registry=REGISTRY,
)
REQUESTS_REJECTED = Counter(
    "agentlink_requests_rejected_total",
    "Report requests refused, by reason (invalid, unavailable, error).",
    ["reason"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "agentlink_jobs_total",
    "Jobs finished by a consumer, by kind and outcome (completed, failed, dead).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
QUEUE_WAIT = Histogram(
    "agentlink_queue_wait_seconds",
    "Time from submission (entry id) to a consumer starting the job.",
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
RENDER_SECONDS = Histogram(
    "agentlink_render_seconds",
    "Time to load data and render one PDF.",
    ["kind"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
UPLOAD_SECONDS = Histogram(
    "agentlink_upload_seconds",
    "Time to store one PDF.",
    ["storage"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "agentlink_job_seconds",
    "Time from submission to the job's outcome being recorded.",
    ["kind"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
RECLAIMED = Counter(
    "agentlink_reclaimed_total",
    "Entries this consumer took over from a stalled consumer (XAUTOCLAIM).",
    registry=REGISTRY,
)
ENTRIES_LOST = Counter(
    "agentlink_entries_lost_total",
    "Pending entries whose payload was deleted from the stream before they were processed.",
    registry=REGISTRY,
)
STORAGE_PAUSED = Gauge(
    "agentlink_storage_paused",
    "1 while this consumer holds its job because the storage rejects our configuration.",
    registry=REGISTRY,
)
RETRIES = Counter(
    "agentlink_retries_total",
    "Attempts that failed with a transient error and were retried.",
    ["kind"],
    registry=REGISTRY,
)
