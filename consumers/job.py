"""What a consumer does with one stream entry: the report job and its outcomes.

Outcomes, each recorded together with the XACK in one script:

- completed: rendered, stored at the job's deterministic path, result recorded once;
- failed: a permanent error (no data for the suburb, storage refused the file), or any
  exception that is not a ``TransientJobError`` — at its first attempt;
- dead: the entry cannot be decoded, was delivered more than AGENTLINK_MAX_DELIVERIES
  times (consumers crashed on it), or failed AGENTLINK_MAX_ATTEMPTS times transiently.
  It is copied to the dead letters with its error history, to be replayed.

Only ``TransientJobError`` (storage 5xx/429, network, timeouts, a render that crashed or ran
out of time) is retried, in place, with exponential back-off and jitter while the lease
keeper keeps the entry owned; nothing is left unowned in between. Anything else is a bug or
bad data: retrying it would hold this consumer through the back-off for nothing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Literal, TypeVar

import structlog

from agentlink.errors import (
    InvalidJobError,
    PermanentJobError,
    ServiceUnavailableError,
    StorageConfigError,
    TransientJobError,
    UnexpectedJobError,
)
from agentlink.jobs import (
    JobEvent,
    JobResult,
    ReportSpec,
    Status,
    decode_entry,
    new_job_fields,
    result_fields,
)
from agentlink.settings import Settings
from agentlink.storage import Storage, report_path
from agentlink.stream.encoding import entry_time_s, now_iso
from agentlink.stream.queue import Entry, ReportQueue, error_record
from consumers import metrics
from consumers.lease import LeaseKeeper
from consumers.render_child import RenderAbortedError, ReportRenderer

log = structlog.get_logger(__name__)

T = TypeVar("T")
Via = Literal["read", "reclaim", "resume"]
"""How a consumer got an entry: read as new, reclaimed from a stalled consumer, or resumed
from its own pending list after a restart."""

_DETAIL_CHARS = 300


class JobAbandonedError(Exception):
    """The consumer stops working on the entry without an outcome (lease lost, shutdown)."""


class ReportJob:
    """Handles entries for one consumer."""

    def __init__(
        self,
        *,
        settings: Settings,
        queue: ReportQueue,
        lease: LeaseKeeper,
        renderer: ReportRenderer,
        storage: Storage,
        should_give_up: Callable[[], bool],
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.lease = lease
        self.renderer = renderer
        self.storage = storage
        self.should_give_up = should_give_up
        self.stopping = stopping

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, entry: Entry, *, via: Via = "read") -> None:
        """Take one entry to an outcome, or hand it back if we must stop first.

        ``via`` says how the entry came: ``read`` (new), ``reclaim`` (taken over from a
        stalled consumer) or ``resume`` (this consumer's own, left by its previous run).
        """
        structlog.contextvars.bind_contextvars(entry_id=entry.entry_id)
        if not entry.fields:  # a pending entry whose payload was deleted from the stream
            self.entry_lost(entry.entry_id)
            return
        try:
            job_id, spec = decode_entry(entry.fields)
        except InvalidJobError as exc:
            reason = f"malformed entry: {exc}"
            self._dead(entry, entry.fields.get("job_id") or None, reason, None, cause="malformed")
            return
        structlog.contextvars.bind_contextvars(job_id=job_id)
        job = self.queue.job(job_id)
        if job.get("request_id"):
            structlog.contextvars.bind_contextvars(request_id=job["request_id"])
        if not job:  # the record expired or was deleted; the entry still says what to do
            self.queue.update_job(
                job_id, entry_id=entry.entry_id, **new_job_fields(job_id, spec, now_iso())
            )
        elif Status(job["status"]).finished:
            # The outcome was recorded but the ack was lost: ack, do not redo the work.
            self._ack_finished(entry.entry_id, job_id)
            log.info("report.already_finished", status=job["status"])
            return
        if via in {"reclaim", "resume"}:
            event = "reclaimed" if via == "reclaim" else "resumed"
            self._note(job_id, event, deliveries=entry.deliveries)
        if entry.deliveries > self.settings.max_deliveries:
            reason = (
                f"delivered {entry.deliveries} times (AGENTLINK_MAX_DELIVERIES="
                f"{self.settings.max_deliveries}); consumers crashed or stalled on it"
            )
            self._dead(entry, job_id, reason, spec, cause="deliveries")
            return
        self.lease.hold(entry.entry_id, job_id)
        metrics.CONSUMER_BUSY.set(1)
        started = time.monotonic()
        finished = False
        try:
            finished = self._attempts(entry, job_id, spec)
        except JobAbandonedError as exc:
            # Stop renewing first: a renewal in flight would undo the hand-back's idle time.
            self.lease.release()
            if self.lease.deleted:
                self.entry_lost(entry.entry_id)
            else:
                self._hand_back(entry, job_id, str(exc))
        finally:
            self.lease.release()
            metrics.CONSUMER_BUSY.set(0)
            self._record_work(time.monotonic() - started, finished=finished)

    def entry_lost(self, entry_id: str) -> None:
        """XAUTOCLAIM reported a pending entry deleted from the stream: fail its job."""
        job_id = self._persist(lambda: self.queue.job_for_entry(entry_id))
        metrics.ENTRIES_LOST.inc()
        log.error("report.entry_lost", entry_id=entry_id, job_id=job_id)
        self._persist(
            lambda: self._record(
                entry_id,
                job_id,
                Status.FAILED,
                error="entry lost: the stream entry was deleted before it was processed; "
                "submit again",
                event=self._event("entry_lost"),
            )
        )

    # -- the work --------------------------------------------------------------------------------

    def _attempts(self, entry: Entry, job_id: str, spec: ReportSpec) -> bool:
        """Attempt until an outcome; True if this consumer's outcome is the one recorded."""
        while True:
            attempt = self.queue.start_attempt(
                job_id,
                event=self._event("claimed", deliveries=entry.deliveries),
                started_at=now_iso(),
                consumer=self.queue.consumer,
                entry_id=entry.entry_id,
            )
            if attempt < 0:
                # Another consumer recorded the outcome meanwhile (this one stalled, or an
                # earlier outcome write of ours landed although it reported an error).
                self._ack_finished(entry.entry_id, job_id)
                log.info("report.already_finished")
                return False
            structlog.contextvars.bind_contextvars(attempt=attempt)
            if attempt == 1:
                metrics.QUEUE_WAIT.observe(max(0.0, time.time() - entry_time_s(entry.entry_id)))
            log.info(
                "report.claimed", kind=spec.kind.value, suburb=spec.suburb, state=spec.state.value
            )
            try:
                return self._make(entry, job_id, spec)
            except (JobAbandonedError, ServiceUnavailableError):
                raise
            except PermanentJobError as exc:
                return self._fail(entry, job_id, spec, attempt, str(exc))
            except TransientJobError as exc:
                error = str(exc) or type(exc).__name__
                record = error_record(attempt, self.queue.consumer, error, transient=True)
                if attempt >= self.settings.max_attempts:
                    self.queue.add_error(job_id, record, Status.RETRYING)
                    reason = f"gave up after {attempt} attempts: {error}"
                    self._dead(entry, job_id, reason, spec, cause="attempts")
                    return True
                delay = self._backoff_s(attempt, getattr(exc, "retry_after_s", None))
                retrying = self._event(
                    "retrying", attempt=attempt, seconds=round(delay, 2), detail=error
                )
                self.queue.add_error(job_id, record, Status.RETRYING, event=retrying)
                metrics.RETRIES.labels(kind=spec.kind.value).inc()
                log.warning(
                    "report.retrying",
                    error=error,
                    retry_in_s=round(delay, 2),
                    exc_type=type(exc).__name__,
                )
                self._wait(delay)
            except Exception as exc:  # a bug must not look like an outage
                # No adapter translated it, so nothing says a later attempt would differ.
                log.exception("report.unexpected_error", exc_type=type(exc).__name__)
                error = str(UnexpectedJobError.wrap(exc))
                return self._fail(entry, job_id, spec, attempt, error)

    def _make(self, entry: Entry, job_id: str, spec: ReportSpec) -> bool:
        started = time.monotonic()
        try:
            report = self.renderer.render(
                spec,
                job_id=job_id,
                generated_at=datetime.now(UTC),
                should_abort=self._should_abandon,
            )
        except RenderAbortedError as exc:
            raise JobAbandonedError("render abandoned: lease lost or shutdown grace over") from exc
        render_s = time.monotonic() - started
        metrics.RENDER_SECONDS.labels(kind=spec.kind.value).observe(render_s)
        log.info(
            "report.rendered", pages=report.pages, bytes=len(report.pdf), seconds=round(render_s, 3)
        )
        self._note(job_id, "rendered", seconds=round(render_s, 3))
        # Store only while we still own the entry and nobody recorded an outcome meanwhile.
        if not self.lease.check():
            raise JobAbandonedError("lease lost before storing; another consumer owns the entry")
        job = self.queue.job(job_id)
        if job and Status(job["status"]).finished:
            self._ack_finished(entry.entry_id, job_id)
            log.info("report.already_finished", status=job["status"])
            return False
        path = report_path(
            kind=spec.kind,
            suburb=report.suburb,
            state=spec.state.value,
            day=_created_day(job.get("created_at")),
            job_id=job_id,
        )
        upload_started = time.monotonic()
        result = self._save(job_id, path, report.pdf)
        result.pages = report.pages
        upload_s = time.monotonic() - upload_started
        metrics.UPLOAD_SECONDS.labels(storage=result.storage).observe(upload_s)
        log.info("report.uploaded", storage=result.storage, path=result.path, bytes=result.bytes)
        self._note(job_id, "uploaded", seconds=round(upload_s, 3), detail=result.storage)
        # The PDF is stored: recording it must outlast a Redis blip, or the job is redone.
        wrote = self._persist(
            lambda: self._record(
                entry.entry_id,
                job_id,
                Status.COMPLETED,
                error="",
                event=self._event("completed"),
                **result_fields(result),
            )
        )
        if wrote:
            metrics.JOBS_FINISHED.labels(kind=spec.kind.value, outcome="completed").inc()
            metrics.JOB_SECONDS.labels(kind=spec.kind.value).observe(
                max(0.0, time.time() - entry_time_s(entry.entry_id))
            )
        log.info("report.completed", path=result.path, recorded=wrote)
        return wrote

    # -- outcomes --------------------------------------------------------------------------------

    def _fail(self, entry: Entry, job_id: str, spec: ReportSpec, attempt: int, error: str) -> bool:
        record = error_record(attempt, self.queue.consumer, error, transient=False)
        # The history travels with the outcome: setting status first would make the
        # check-and-set skip finished_at and the expiry.
        history = self.queue.history_with(job_id, record)
        wrote = self._persist(
            lambda: self._record(
                entry.entry_id,
                job_id,
                Status.FAILED,
                error=error,
                errors=history,
                event=self._event("failed", attempt=attempt, detail=error),
            )
        )
        if wrote:
            metrics.JOBS_FINISHED.labels(kind=spec.kind.value, outcome="failed").inc()
        log.warning("report.failed", error=error)
        return wrote

    def _dead(
        self,
        entry: Entry,
        job_id: str | None,
        reason: str,
        spec: ReportSpec | None,
        *,
        cause: str,
    ) -> None:
        """Dead-letter the entry; ``cause`` (attempts, deliveries, malformed) labels the count."""
        errors = self.queue.job(job_id).get("errors", "[]") if job_id else "[]"
        dead = {
            **entry.fields,
            "original_id": entry.entry_id,
            "error": reason,
            "errors": errors,
            "deliveries": str(entry.deliveries),
            "consumer": self.queue.consumer,
            "dead_at": now_iso(),
        }
        dead_id = self.queue.dead_letter(
            entry.entry_id,
            job_id,
            self.settings.job_ttl_s,
            dead,
            status=Status.DEAD.value,
            finished_at=now_iso(),
            error=reason,
            event=self._event("dead", deliveries=entry.deliveries, detail=reason),
        )
        if not dead_id:
            log.info("report.already_finished", not_buried=reason)
            return
        metrics.DEAD_LETTERS.labels(reason=cause).inc()
        kind = spec.kind.value if spec else entry.fields.get("kind", "unknown")
        metrics.JOBS_FINISHED.labels(
            kind=kind if kind in {"agents", "agency"} else "unknown", outcome="dead"
        ).inc()
        log.error("report.dead", error=reason, dead_id=dead_id, deliveries=entry.deliveries)

    def _hand_back(self, entry: Entry, job_id: str, why: str) -> None:
        """Leave the entry pending but idle for a whole lease, so another consumer takes it now."""
        try:
            handed = self.queue.hand_back(entry.entry_id, self.settings.lease_ms)
        except ServiceUnavailableError:
            handed = False  # it becomes reclaimable when the lease lapses anyway
        log.warning("report.handed_back", reason=why, immediate=handed)
        self._note(job_id, "handed_back", detail=why)

    # -- helpers ---------------------------------------------------------------------------------

    def _event(
        self,
        event: str,
        *,
        attempt: int | None = None,
        deliveries: int | None = None,
        seconds: float | None = None,
        detail: str | None = None,
    ) -> JobEvent:
        """A timeline event by this consumer, stamped now."""
        return JobEvent(
            event=event,
            at=now_iso(),
            consumer=self.queue.consumer,
            attempt=attempt,
            deliveries=deliveries,
            seconds=seconds,
            detail=detail[:_DETAIL_CHARS] if detail else None,
        )

    def _note(
        self,
        job_id: str,
        event: str,
        *,
        deliveries: int | None = None,
        seconds: float | None = None,
        detail: str | None = None,
    ) -> None:
        """Add an event that records no state change to the timeline; a Redis blip loses the
        line, never the job."""
        try:
            self.queue.event(
                job_id, self._event(event, deliveries=deliveries, seconds=seconds, detail=detail)
            )
        except ServiceUnavailableError as exc:
            log.warning("report.timeline_skipped", timeline_event=event, error=str(exc))

    def _record_work(self, busy_s: float, *, finished: bool) -> None:
        """Feed the scaling gauges' service time; a Redis blip loses one sample."""
        try:
            self.queue.record_work(busy_s, finished=finished)
        except ServiceUnavailableError as exc:
            log.warning("consumer.work_not_recorded", error=str(exc))

    def _save(self, job_id: str, path: str, pdf: bytes) -> JobResult:
        """Store the PDF; while the storage rejects our configuration, hold the job and wait."""
        while True:
            try:
                return self.storage.save(path, pdf)
            except StorageConfigError as exc:
                self._wait_for_storage(job_id, exc)

    def _wait_for_storage(self, job_id: str, error: StorageConfigError) -> None:
        """Not the job's fault: keep it (lease renewed, nothing failed), take no new job,
        and re-check the storage every AGENTLINK_STORAGE_RECHECK_S until it works again."""
        metrics.STORAGE_PAUSED.set(1)
        self.lease.state = "paused: storage misconfigured"
        self._persist(
            lambda: self.queue.update_unfinished(
                job_id, status=Status.RETRYING.value, error=f"waiting for the storage: {error}"
            )
        )
        try:
            while True:
                log.error(
                    "storage.misconfigured",
                    error=str(error),
                    recheck_in_s=self.settings.storage_recheck_s,
                    hint="fix the storage credentials or settings; jobs stay queued meanwhile",
                )
                self._wait(self.settings.storage_recheck_s)
                try:
                    self.storage.check()
                except StorageConfigError as exc:
                    error = exc
                    continue
                except TransientJobError:
                    pass  # reachable but unwell: let the upload's own error handling decide
                log.info("storage.recovered")
                return
        finally:
            metrics.STORAGE_PAUSED.set(0)
            self.lease.state = ""

    def _record(
        self,
        entry_id: str,
        job_id: str | None,
        status: Status,
        *,
        event: JobEvent,
        **fields: str,
    ) -> bool:
        """Record the job's outcome (check-and-set) and ack its entry, in one step."""
        return self.queue.finish(
            entry_id,
            job_id,
            self.settings.job_ttl_s,
            status=status.value,
            finished_at=now_iso(),
            event=event,
            **fields,
        )

    def _ack_finished(self, entry_id: str, job_id: str) -> None:
        """Ack an entry whose job already has an outcome, writing nothing else."""
        self._persist(lambda: self.queue.finish(entry_id, job_id, self.settings.job_ttl_s))

    def _persist(self, op: Callable[[], T]) -> T:
        """Run a Redis write, retrying through an outage until it lands or we must stop."""
        delay = 0.2
        while True:
            try:
                return op()
            except ServiceUnavailableError as exc:
                if self.should_give_up():
                    raise JobAbandonedError(f"Redis unavailable at shutdown: {exc}") from exc
                log.warning("report.record_retrying", error=str(exc), retry_in_s=delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _should_abandon(self) -> bool:
        return self.lease.lost or self.should_give_up()

    def _wait(self, delay_s: float) -> None:
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:
            if self._should_abandon() or self.stopping.is_set():
                raise JobAbandonedError("stopping during retry back-off")
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Exponential back-off with full jitter, at least what the server asked for."""
        cap = min(self.settings.retry_max_s, self.settings.retry_base_s * 2 ** (attempt - 1))
        delay = random.uniform(cap / 2, cap)
        return max(delay, retry_after_s or 0.0)


def _created_day(created_at: str | None) -> date:
    if created_at:
        try:
            return datetime.fromisoformat(created_at).date()
        except ValueError:
            pass
    return datetime.now(UTC).date()
