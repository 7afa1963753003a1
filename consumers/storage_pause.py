"""Storing a PDF while the storage may be misconfigured.

A storage that rejects our credentials or configuration (a revoked Dropbox token, a
missing scope) is not the job's fault: the consumer keeps the job (its lease renewed,
nothing failed), takes no new one, and re-checks the storage every
AGENTLINK_STORAGE_RECHECK_S until it works again; then it stores and goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from agentlink.errors import StorageConfigError, TransientJobError
from agentlink.jobs import JobResult
from consumers import metrics

if TYPE_CHECKING:
    from consumers.job import ReportJob

log = structlog.get_logger("consumers.job")


def save_while_paused(job: ReportJob, job_id: str, path: str, pdf: bytes) -> JobResult:
    """``job.storage.save(path, pdf)``, holding the job through storage misconfiguration."""
    while True:
        try:
            return job.storage.save(path, pdf)
        except StorageConfigError as exc:
            _wait_for_storage(job, job_id, exc)


def _wait_for_storage(job: ReportJob, job_id: str, error: StorageConfigError) -> None:
    metrics.STORAGE_PAUSED.set(1)
    job.lease.state = "paused: storage misconfigured"
    event = job.rec.steps.event("waiting_for_storage", detail=str(error))
    job.rec.persist(lambda: job.records.waiting(job_id, f"waiting for the storage: {error}", event))
    try:
        while True:
            log.error(
                "storage.misconfigured",
                error=str(error),
                recheck_in_s=job.settings.storage_recheck_s,
                hint="fix the storage credentials or settings; jobs stay queued meanwhile",
            )
            job.rec.wait(job.settings.storage_recheck_s)
            try:
                job.storage.check()
            except StorageConfigError as exc:
                error = exc
                continue
            except TransientJobError:
                pass  # reachable but unwell: let the upload's own error handling decide
            log.info("storage.recovered")
            return
    finally:
        metrics.STORAGE_PAUSED.set(0)
        job.lease.state = ""
