"""The peer's RQ job functions: the same report as AgentLink's render child, and a no-op.

``render_job`` makes the report with ``agentlink.reports.make_report`` and the bundled
sample data (the very call ``consumers.render_child`` makes in its child), writes the PDF into
``PEER_OUTPUT_DIR`` and marks the job hash completed, as the old service did. Both
functions append one JSON line per job (``job``, ``worker``, ``start``, ``end``: unix
seconds) to ``PEER_EVENTS_FILE``, with one ``write(2)`` on an ``O_APPEND`` descriptor, so
the benchmark can time them from outside; the bench times AgentLink's consumers from their
job records and logs.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from agentlink.jobs import AuState, Kind, ReportSpec

_source: Any = None
_redis: redis.Redis | None = None


def _connection() -> redis.Redis:
    global _redis  # noqa: PLW0603 - one connection per process, as the old service had
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["PEER_REDIS_URL"])
    return _redis


def _record(job_id: str, start: float) -> None:
    line = {
        "job": job_id,
        "worker": os.environ.get("RQ_WORKER_ID", str(os.getppid())),
        "start": start,
        "end": time.time(),
    }
    fd = os.open(os.environ["PEER_EVENTS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def preload() -> None:
    """Import WeasyPrint and load the sample data now (``bench.peer.worker`` calls this
    before it forks). Imported here, not at the top, so that the no-op job and the API,
    which enqueues by name, never load WeasyPrint."""
    global _source  # noqa: PLW0603 - the data set is loaded once per process
    if _source is None:
        from agentlink.reports import sample_source

        _source = sample_source()


def render_job(job_id: str, kind: str, suburb: str, state: str) -> dict[str, Any]:
    """Render one report, write it to ``PEER_OUTPUT_DIR``, mark the job completed."""
    start = time.time()
    preload()
    from agentlink.reports import make_report

    spec = ReportSpec(kind=Kind(kind), suburb=suburb, state=AuState(state))
    report = make_report(spec, job_id=job_id, source=_source, generated_at=datetime.now(UTC))
    path = Path(os.environ["PEER_OUTPUT_DIR"]) / f"{kind}-{suburb}-{state}-{job_id}.pdf"
    path.write_bytes(report.pdf)
    _connection().hset(f"job:{job_id}", mapping={"status": "completed", "path": str(path)})
    _record(job_id, start)
    return {"path": str(path), "pages": report.pages}


def noop_job(job_id: str) -> None:
    """Do nothing but note when it ran (the queue's own cost, nothing else)."""
    _record(job_id, time.time())
