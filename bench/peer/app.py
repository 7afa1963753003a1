"""The old API: FastAPI, one uvicorn process, a job hash and ``queue.enqueue`` per request.

``PEER_HANDLERS=sync`` (default) serves plain ``def`` handlers, which FastAPI runs in its
thread pool; ``PEER_HANDLERS=async`` serves ``async def`` handlers that call the same
synchronous redis-py and RQ functions on the event loop — what FastAPI + RQ code usually
does, since RQ has no asyncio API. Redis is ``PEER_REDIS_URL``; jobs go to the RQ queue
``reports``. No API keys, no idempotency, no rate limit: the old service had none.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import redis
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from rq import Queue

QUEUE = "reports"
RENDER_JOB = "bench.peer.jobs.render_job"
"""Enqueued by name, so this process never imports WeasyPrint (the workers do)."""

connection = redis.Redis.from_url(os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0"))
queue = Queue(QUEUE, connection=connection)
app = FastAPI(title="reports (FastAPI + RQ)")


class ReportRequest(BaseModel):
    """The body Make.com sends."""

    suburb: str
    state: str


def _submit(kind: str, body: ReportRequest) -> dict[str, str]:
    job_id = str(uuid.uuid4())
    connection.hset(f"job:{job_id}", "status", "processing")
    queue.enqueue(RENDER_JOB, job_id, kind, body.suburb, body.state.upper())
    return {"job_id": job_id, "status": "processing"}


def _status(job_id: str) -> dict[str, Any]:
    fields = connection.hgetall(f"job:{job_id}")
    if not fields:
        raise HTTPException(status_code=404, detail="job not found")
    return {"job_id": job_id, **{k.decode(): v.decode() for k, v in fields.items()}}


if os.environ.get("PEER_HANDLERS", "sync") == "async":

    @app.post("/api/generate-agents-report")
    async def agents_report(body: ReportRequest) -> dict[str, str]:
        """Queue an agents report."""
        return _submit("agents", body)

    @app.post("/api/generate-agency-report")
    async def agency_report(body: ReportRequest) -> dict[str, str]:
        """Queue an agency report."""
        return _submit("agency", body)

    @app.get("/api/job-status/{job_id}")
    async def job_status(job_id: str) -> dict[str, Any]:
        """The job hash."""
        return _status(job_id)

else:

    @app.post("/api/generate-agents-report")
    def agents_report(body: ReportRequest) -> dict[str, str]:
        """Queue an agents report."""
        return _submit("agents", body)

    @app.post("/api/generate-agency-report")
    def agency_report(body: ReportRequest) -> dict[str, str]:
        """Queue an agency report."""
        return _submit("agency", body)

    @app.get("/api/job-status/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        """The job hash."""
        return _status(job_id)


@app.get("/health")
def health() -> dict[str, str]:
    """200 while Redis answers."""
    connection.ping()
    return {"status": "ok"}
