"""What a consumer does with one stream entry: the report job and its outcomes.

Outcomes, each recorded together with the XACK in one script:

- completed: rendered, stored at the job's deterministic path, result recorded once;
- failed: a permanent error (no data for the suburb, storage refused the file), or any
  exception that is not a ``TransientJobError`` — at its first attempt;
- cancelled: an operator or the job's owner cancelled it (a queued job never reaches a
  consumer; a running one is stopped at the next lease renewal, nothing is stored);
- dead: the entry cannot be decoded, was delivered more than AGENTLINK_MAX_DELIVERIES
  times (consumers crashed on it), or failed AGENTLINK_MAX_ATTEMPTS times transiently.
  It is copied to the dead letters with its error history, to be replayed.

Only ``TransientJobError`` (storage 5xx/429, network, timeouts, a render that crashed or ran
out of time) is retried, in place, with back-off (``consumers.backoff``) while the lease
keeper keeps the entry owned; nothing is left unowned in between. Anything else is a bug or
bad data: retrying it would hold this consumer through the back-off for nothing.

A job costs two or three round trips to Redis: ``start`` (attempt, status, timeline,
heartbeat), the lease check before storing (only once a third of a lease has passed since
Redis handed the entry over), and ``finish`` (outcome, timeline, callback, stats, XACK, and
in a backlog the read of the next entry).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Literal

import structlog

from agentlink.errors import (
    InvalidJobError,
    PermanentJobError,
    ServiceUnavailableError,
    TransientJobError,
    UnexpectedJobError,
)
from agentlink.jobs import (
    ReportSpec,
    Status,
    decode_entry,
    restored_job_fields,
    result_fields,
)
from agentlink.settings import Settings
from agentlink.storage import Storage, report_path
from agentlink.stream.encoding import now_iso
from agentlink.stream.group import Entry
from agentlink.stream.records import JobRecords, Started, error_record
from consumers import metrics
from consumers.backoff import backoff_s
from consumers.lease import Checkpoint, LeaseKeeper
from consumers.outcomes import JobAbandonedError, JobCancelledError, JobRecorder
from consumers.render_child import RenderAbortedError, ReportRenderer
from consumers.storage_pause import save_while_paused

log = structlog.get_logger(__name__)

Via = Literal["read", "reclaim", "resume"]
"""How a consumer got an entry: read as new, reclaimed from a stalled consumer, or resumed
from its own pending list after a restart."""


class ReportJob:
    """Handles entries for one consumer."""

    def __init__(
        self,
        *,
        settings: Settings,
        records: JobRecords,
        lease: LeaseKeeper,
        renderer: ReportRenderer,
        storage: Storage,
        should_give_up: Callable[[], bool],
        stopping: threading.Event,
        may_take_next: Callable[[], bool] = lambda: False,
    ) -> None:
        """``may_take_next``: whether the script recording an outcome may also read the
        consumer's next new entry (not while it stops, nor when a reclaim check is due)."""
        self.settings = settings
        self.records = records
        self.lease = lease
        self.renderer = renderer
        self.storage = storage
        self.should_give_up = should_give_up
        self.stopping = stopping
        self.rec = JobRecorder(
            settings=settings,
            records=records,
            lease=lease,
            should_give_up=should_give_up,
            stopping=stopping,
            may_take_next=may_take_next,
        )

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, entry: Entry, *, via: Via = "read") -> Entry | None:
        """Take one entry to an outcome, or hand it back if we must stop first; returns the
        next new entry when the outcome's script read it (``may_take_next``).

        ``via`` says how the entry came: ``read`` (new), ``reclaim`` (taken over from a
        stalled consumer) or ``resume`` (this consumer's own, left by its previous run).
        """
        self.rec.start()
        try:
            self._handle(entry, via)
        except JobAbandonedError as exc:
            _left_pending(exc)
            return None
        return self.rec.next_entry

    def entry_lost(self, entry_id: str) -> None:
        """XAUTOCLAIM reported ``entry_id`` deleted from the stream: fail its job."""
        try:
            self.rec.entry_lost(entry_id)
        except JobAbandonedError as exc:
            _left_pending(exc)

    def _handle(self, entry: Entry, via: Via) -> None:
        structlog.contextvars.bind_contextvars(entry_id=entry.entry_id)
        if not entry.fields:  # a pending entry whose payload was deleted from the stream
            self.rec.entry_lost(entry.entry_id)
            return
        kind = entry.fields.get("kind", "")
        try:
            job_id, spec = decode_entry(entry.fields)
        except InvalidJobError as exc:
            reason = f"malformed entry: {exc}"
            self.rec.dead(
                entry, entry.fields.get("job_id") or None, reason, kind, cause="malformed"
            )
            return
        structlog.contextvars.bind_contextvars(job_id=job_id)
        if via != "read":
            step = "reclaimed" if via == "reclaim" else "resumed"
            self.rec.note(job_id, step, kind, deliveries=entry.deliveries)
        if entry.deliveries > self.settings.max_deliveries:
            reason = (
                f"delivered {entry.deliveries} times (AGENTLINK_MAX_DELIVERIES="
                f"{self.settings.max_deliveries}); consumers crashed or stalled on it"
            )
            self.rec.dead(entry, job_id, reason, kind, cause="deliveries")
            return
        self.lease.hold(entry.entry_id, job_id, fresh=via != "resume")
        metrics.CONSUMER_BUSY.set(1)
        self.rec.held_since = time.monotonic()
        try:
            self._attempts(entry, job_id, spec)
        except JobAbandonedError as exc:
            # Stop renewing first: a renewal in flight would undo the hand-back's idle time.
            self.lease.release(beat=True)
            if self.lease.deleted:
                self.rec.entry_lost(entry.entry_id)
            else:
                self.rec.hand_back(entry, job_id, kind, str(exc))
            self.rec.persist(lambda: self.records.record_work(self.rec.busy_s()))
        finally:
            self.lease.release()
            metrics.CONSUMER_BUSY.set(0)

    # -- the work --------------------------------------------------------------------------------

    def _attempts(self, entry: Entry, job_id: str, spec: ReportSpec) -> None:
        """Attempt until an outcome is recorded (here or by another consumer)."""
        kind = spec.kind.value
        restore = restored_job_fields(job_id, spec, entry.fields, now=now_iso())
        while True:
            claimed = self.rec.steps.event("claimed", deliveries=entry.deliveries)
            started = self.rec.persist(
                functools.partial(
                    self.records.start, job_id, entry.entry_id, claimed, restore=restore
                )
            )
            if started.attempt < 0:
                # Another consumer recorded the outcome meanwhile (this one stalled, or an
                # earlier outcome write of ours landed although it reported an error).
                self.rec.ack_only(entry, kind, started.status)
                return
            attempt = started.attempt
            structlog.contextvars.bind_contextvars(attempt=attempt)
            if started.request_id:
                structlog.contextvars.bind_contextvars(request_id=started.request_id)
            self.rec.steps.tell(
                "claimed",
                kind=kind,
                attempt=attempt,
                entry_id=entry.entry_id,
                suburb=spec.suburb,
                state=spec.state.value,
            )
            delay_s = self._attempt(entry, job_id, spec, started)
            if delay_s is None:
                return
            # Outside the attempt's error handlers: a cancel here is recorded like any other.
            try:
                self.rec.wait(delay_s)
            except JobCancelledError:
                self.rec.cancelled(entry, job_id, kind)
                return

    def _attempt(
        self, entry: Entry, job_id: str, spec: ReportSpec, started: Started
    ) -> float | None:
        """Make the report once; None once an outcome is recorded, else the back-off to
        wait before the next attempt (a transient error, recorded)."""
        kind = spec.kind.value
        attempt = started.attempt
        try:
            self._make(entry, job_id, spec, started, time.monotonic())
        except (JobAbandonedError, ServiceUnavailableError):
            raise
        except JobCancelledError:
            self.rec.cancelled(entry, job_id, kind)
        except PermanentJobError as exc:
            self.rec.fail(entry, job_id, kind, attempt, str(exc))
        except TransientJobError as exc:
            return self._retry_later(entry, job_id, kind, attempt, exc)
        except Exception as exc:  # a bug must not look like an outage
            # No adapter translated it, so nothing says a later attempt would differ.
            log.exception("report.unexpected_error", exc_type=type(exc).__name__)
            self.rec.fail(entry, job_id, kind, attempt, str(UnexpectedJobError.wrap(exc)))
        return None

    def _make(
        self, entry: Entry, job_id: str, spec: ReportSpec, attempt: Started, started: float
    ) -> None:
        kind = spec.kind.value
        if attempt.cancel_requested:
            raise JobCancelledError
        try:
            report = self.renderer.render(
                spec,
                job_id=job_id,
                generated_at=datetime.now(UTC),
                should_abort=self._should_stop_render,
            )
        except RenderAbortedError as exc:
            if self.lease.cancelled:
                raise JobCancelledError from exc
            raise JobAbandonedError("render abandoned: lease lost or shutdown grace over") from exc
        render_s = time.monotonic() - started
        self.rec.steps.tell(
            "rendered", kind=kind, pages=report.pages, bytes=len(report.pdf), seconds=render_s
        )
        # Store only while we still own the entry and nobody recorded an outcome meanwhile.
        rendered = self.rec.steps.event("rendered", seconds=render_s)
        checkpoint = self.rec.persist(lambda: self.lease.checkpoint(rendered))
        if checkpoint is None:  # not written by a renewal: it goes with the next write
            self.rec.unwritten.append(rendered)
        if checkpoint is Checkpoint.FINISHED:
            self.rec.ack_only(entry, kind, "finished elsewhere")
            return
        if checkpoint is Checkpoint.CANCELLED:
            raise JobCancelledError
        if checkpoint not in {None, Checkpoint.OWNED}:
            raise JobAbandonedError("lease lost before storing; another consumer owns the entry")
        path = report_path(
            kind=spec.kind,
            suburb=report.suburb,
            state=spec.state.value,
            day=_created_day(attempt.created_at),
            job_id=job_id,
        )
        upload_started = time.monotonic()
        result = save_while_paused(self, job_id, path, report.pdf)
        result.pages = report.pages
        upload_s = time.monotonic() - upload_started
        self.rec.steps.tell(
            "uploaded",
            kind=kind,
            storage=result.storage,
            path=result.path,
            bytes=result.bytes,
            seconds=upload_s,
        )
        uploaded = self.rec.steps.event("uploaded", seconds=upload_s, detail=result.storage)
        outcome = self.rec.outcome(Status.COMPLETED, error="", events=[uploaded, "completed"])
        outcome.fields.update(result_fields(result))
        # The PDF is stored: recording it must outlast a Redis blip, or the job is redone.
        self.rec.record(
            entry, job_id, kind, outcome, service_s=time.monotonic() - started, path=result.path
        )

    def _retry_later(
        self, entry: Entry, job_id: str, kind: str, attempt: int, exc: TransientJobError
    ) -> float | None:
        """Record a transient failure; the back-off to wait before the next attempt, or None
        once it gave up (the entry is dead-lettered) instead."""
        error = str(exc) or type(exc).__name__
        record = error_record(attempt, self.records.name, error, transient=True)
        if attempt >= self.settings.max_attempts:
            reason = f"gave up after {attempt} attempts: {error}"
            self.rec.dead(entry, job_id, reason, kind, cause="attempts", record=record)
            return None
        delay = backoff_s(
            attempt,
            base_s=self.settings.retry_base_s,
            max_s=self.settings.retry_max_s,
            retry_after_s=getattr(exc, "retry_after_s", None),
        )
        events = [
            *self.rec.unwritten,
            self.rec.steps.event("retrying", attempt=attempt, seconds=delay, detail=error),
        ]
        self.rec.unwritten.clear()
        self.rec.persist(
            lambda: self.records.attempt_failed(job_id, record, events, status=Status.RETRYING)
        )
        self.rec.steps.tell(
            "retrying",
            kind=kind,
            error=error,
            retry_in_s=round(delay, 2),
            exc_type=type(exc).__name__,
        )
        return delay

    # -- helpers ---------------------------------------------------------------------------------

    def _should_stop_render(self) -> bool:
        return self.lease.lost or self.lease.cancelled or self.should_give_up()


def _left_pending(exc: JobAbandonedError) -> None:
    # Only past the shutdown grace with Redis away: nothing more can be written, and the
    # entry stays pending for the consumer that reclaims it. The consumer stops cleanly.
    log.warning("report.abandoned", error=str(exc))


def _created_day(created_at: str | None) -> date:
    if created_at:
        try:
            return datetime.fromisoformat(created_at).date()
        except ValueError:
            pass
    return datetime.now(UTC).date()
