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

A job costs four round trips to Redis: the read, ``start`` (attempt, status, timeline,
heartbeat), the lease check before storing, and ``finish`` (outcome, timeline, callback,
stats, XACK).
"""

from __future__ import annotations

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
    TransientJobError,
    UnexpectedJobError,
)
from agentlink.jobs import (
    AttemptError,
    JobEvent,
    ReportSpec,
    Status,
    decode_entry,
    new_job_fields,
    result_fields,
)
from agentlink.settings import Settings
from agentlink.storage import Storage, report_path
from agentlink.stream.encoding import now_iso
from agentlink.stream.group import Entry
from agentlink.stream.records import JobRecords, Outcome, Started, error_record
from consumers import metrics
from consumers.backoff import backoff_s
from consumers.lease import Checkpoint, LeaseKeeper
from consumers.lifecycle import Lifecycle
from consumers.render_child import RenderAbortedError, ReportRenderer
from consumers.storage_pause import save_while_paused

log = structlog.get_logger(__name__)

T = TypeVar("T")
Via = Literal["read", "reclaim", "resume"]
"""How a consumer got an entry: read as new, reclaimed from a stalled consumer, or resumed
from its own pending list after a restart."""

CANCELLED_ERROR = "cancelled before it was finished"


class JobAbandonedError(Exception):
    """The consumer stops working on the entry without an outcome (lease lost, shutdown)."""


class JobCancelledError(Exception):
    """The job's cancel was requested while this consumer made it."""


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
        self.steps = Lifecycle(records.name)
        self.may_take_next = may_take_next
        self.next_entry: Entry | None = None
        """The next entry, read by the script that recorded the last outcome."""
        self.unwritten: list[JobEvent] = []
        """Timeline events of the current attempt that no script has written yet (they go
        with the next write: the outcome, or the failed attempt)."""

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, entry: Entry, *, via: Via = "read") -> Entry | None:
        """Take one entry to an outcome, or hand it back if we must stop first; returns the
        next new entry when the outcome's script read it (``may_take_next``).

        ``via`` says how the entry came: ``read`` (new), ``reclaim`` (taken over from a
        stalled consumer) or ``resume`` (this consumer's own, left by its previous run).
        """
        self.next_entry = None
        self.unwritten.clear()
        self._handle(entry, via)
        return self.next_entry

    def _handle(self, entry: Entry, via: Via) -> None:
        structlog.contextvars.bind_contextvars(entry_id=entry.entry_id)
        if not entry.fields:  # a pending entry whose payload was deleted from the stream
            self.entry_lost(entry.entry_id)
            return
        kind = entry.fields.get("kind", "")
        try:
            job_id, spec = decode_entry(entry.fields)
        except InvalidJobError as exc:
            reason = f"malformed entry: {exc}"
            self._dead(entry, entry.fields.get("job_id") or None, reason, kind, cause="malformed")
            return
        structlog.contextvars.bind_contextvars(job_id=job_id)
        if via != "read":
            step = "reclaimed" if via == "reclaim" else "resumed"
            self._note(job_id, step, kind, deliveries=entry.deliveries)
        if entry.deliveries > self.settings.max_deliveries:
            reason = (
                f"delivered {entry.deliveries} times (AGENTLINK_MAX_DELIVERIES="
                f"{self.settings.max_deliveries}); consumers crashed or stalled on it"
            )
            self._dead(entry, job_id, reason, kind, cause="deliveries")
            return
        self.lease.hold(entry.entry_id, job_id, fresh=via != "resume")
        metrics.CONSUMER_BUSY.set(1)
        self._held_since = time.monotonic()
        try:
            self._attempts(entry, job_id, spec)
        except JobAbandonedError as exc:
            # Stop renewing first: a renewal in flight would undo the hand-back's idle time.
            self.lease.release(beat=True)
            if self.lease.deleted:
                self.entry_lost(entry.entry_id)
            else:
                self._hand_back(entry, job_id, kind, str(exc))
            self.persist(lambda: self.records.record_work(self._busy_s()))
        finally:
            self.lease.release()
            metrics.CONSUMER_BUSY.set(0)

    def entry_lost(self, entry_id: str) -> None:
        """XAUTOCLAIM reported a pending entry deleted from the stream: fail its job."""
        job_id = self.persist(lambda: self.records.job_for_entry(entry_id))
        error = "entry lost: the stream entry was deleted before it was processed; submit again"
        outcome = self._outcome(Status.FAILED, error=error, events=["entry_lost"])
        wrote, _ = self.persist(
            lambda: self.records.finish(entry_id, job_id, self.settings.job_ttl_s, outcome)
        )
        self.steps.tell("entry_lost", kind="unknown", recorded=wrote, lost_entry=entry_id)

    # -- the work --------------------------------------------------------------------------------

    def _attempts(self, entry: Entry, job_id: str, spec: ReportSpec) -> None:
        """Attempt until an outcome is recorded (here or by another consumer)."""
        kind = spec.kind.value
        restore = new_job_fields(job_id, spec, now_iso())
        while True:
            claimed = self.steps.event("claimed", deliveries=entry.deliveries)
            started = self.records.start(job_id, entry.entry_id, claimed, restore=restore)
            if started.attempt < 0:
                # Another consumer recorded the outcome meanwhile (this one stalled, or an
                # earlier outcome write of ours landed although it reported an error).
                self._ack_only(entry, kind, started.status)
                return
            attempt = started.attempt
            structlog.contextvars.bind_contextvars(attempt=attempt)
            if started.request_id:
                structlog.contextvars.bind_contextvars(request_id=started.request_id)
            self.steps.tell(
                "claimed",
                kind=kind,
                attempt=attempt,
                entry_id=entry.entry_id,
                suburb=spec.suburb,
                state=spec.state.value,
            )
            attempt_started = time.monotonic()
            try:
                self._make(entry, job_id, spec, started, attempt_started)
                return
            except (JobAbandonedError, ServiceUnavailableError):
                raise
            except JobCancelledError:
                self._record(entry, job_id, kind, self._outcome(Status.CANCELLED))
                return
            except PermanentJobError as exc:
                self._fail(entry, job_id, kind, attempt, str(exc))
                return
            except TransientJobError as exc:
                if self._retry_later(entry, job_id, kind, attempt, exc):
                    return
            except Exception as exc:  # a bug must not look like an outage
                # No adapter translated it, so nothing says a later attempt would differ.
                log.exception("report.unexpected_error", exc_type=type(exc).__name__)
                self._fail(entry, job_id, kind, attempt, str(UnexpectedJobError.wrap(exc)))
                return

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
        self.steps.tell(
            "rendered", kind=kind, pages=report.pages, bytes=len(report.pdf), seconds=render_s
        )
        # Store only while we still own the entry and nobody recorded an outcome meanwhile.
        rendered = self.steps.event("rendered", seconds=render_s)
        checkpoint = self.lease.checkpoint(rendered)
        if checkpoint is None:  # not written by a renewal: it goes with the next write
            self.unwritten.append(rendered)
        if checkpoint is Checkpoint.FINISHED:
            self._ack_only(entry, kind, "finished elsewhere")
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
        self.steps.tell(
            "uploaded",
            kind=kind,
            storage=result.storage,
            path=result.path,
            bytes=result.bytes,
            seconds=upload_s,
        )
        uploaded = self.steps.event("uploaded", seconds=upload_s, detail=result.storage)
        outcome = self._outcome(Status.COMPLETED, error="", events=[uploaded, "completed"])
        outcome.fields.update(result_fields(result))
        # The PDF is stored: recording it must outlast a Redis blip, or the job is redone.
        self._record(
            entry, job_id, kind, outcome, service_s=time.monotonic() - started, path=result.path
        )

    def _retry_later(
        self, entry: Entry, job_id: str, kind: str, attempt: int, exc: TransientJobError
    ) -> bool:
        """Record a transient failure and wait out the back-off; True once it gave up (the
        entry is dead-lettered) instead."""
        error = str(exc) or type(exc).__name__
        record = error_record(attempt, self.records.name, error, transient=True)
        if attempt >= self.settings.max_attempts:
            reason = f"gave up after {attempt} attempts: {error}"
            self._dead(entry, job_id, reason, kind, cause="attempts", record=record)
            return True
        delay = backoff_s(
            attempt,
            base_s=self.settings.retry_base_s,
            max_s=self.settings.retry_max_s,
            retry_after_s=getattr(exc, "retry_after_s", None),
        )
        events = [
            *self.unwritten,
            self.steps.event("retrying", attempt=attempt, seconds=delay, detail=error),
        ]
        self.unwritten.clear()
        self.persist(
            lambda: self.records.attempt_failed(job_id, record, events, status=Status.RETRYING)
        )
        self.steps.tell(
            "retrying",
            kind=kind,
            error=error,
            retry_in_s=round(delay, 2),
            exc_type=type(exc).__name__,
        )
        self.wait(delay)
        return False

    # -- outcomes --------------------------------------------------------------------------------

    def _outcome(
        self,
        status: Status,
        *,
        error: str | None = None,
        events: list[JobEvent | str] | None = None,
        record: AttemptError | None = None,
    ) -> Outcome:
        """The outcome ``status`` stamped now (events given by name are made here), after
        the attempt's events not written yet."""
        stamped = [
            *self.unwritten,
            *(self.steps.event(e) if isinstance(e, str) else e for e in events or []),
        ]
        self.unwritten.clear()
        if status is Status.CANCELLED:
            error = CANCELLED_ERROR
            stamped = stamped or [self.steps.event("cancelled")]
        written = {"finished_at": now_iso()}
        if error is not None:
            written["error"] = error
        return Outcome(status=status, fields=written, events=stamped, record=record)

    def _record(
        self,
        entry: Entry,
        job_id: str,
        kind: str,
        outcome: Outcome,
        *,
        service_s: float = 0.0,
        **told: object,
    ) -> None:
        """Record ``outcome`` with the XACK (surviving Redis blips) and tell it."""
        wrote, self.next_entry = self.persist(
            lambda: self.records.finish(
                entry.entry_id,
                job_id,
                self.settings.job_ttl_s,
                outcome,
                service_s=service_s if outcome.status is Status.COMPLETED else 0.0,
                busy_s=self._busy_s(),
                take_next=self.may_take_next(),
            )
        )
        self.steps.tell(
            outcome.status.value, kind=kind, recorded=wrote, entry_id=entry.entry_id, **told
        )

    def _fail(self, entry: Entry, job_id: str, kind: str, attempt: int, error: str) -> None:
        record = error_record(attempt, self.records.name, error, transient=False)
        event = self.steps.event("failed", attempt=attempt, detail=error)
        outcome = self._outcome(Status.FAILED, error=error, events=[event], record=record)
        self._record(entry, job_id, kind, outcome, error=error)

    def _dead(
        self,
        entry: Entry,
        job_id: str | None,
        reason: str,
        kind: str,
        *,
        cause: str,
        record: AttemptError | None = None,
    ) -> None:
        """Dead-letter the entry; ``cause`` (attempts, deliveries, malformed) labels the count."""
        letter = {
            **entry.fields,
            "original_id": entry.entry_id,
            "error": reason,
            "deliveries": str(entry.deliveries),
            "consumer": self.records.name,
            "dead_at": now_iso(),
        }
        event = self.steps.event("dead", deliveries=entry.deliveries, detail=reason)
        outcome = self._outcome(Status.DEAD, error=reason, events=[event], record=record)
        dead_id = self.persist(
            lambda: self.records.dead_letter(
                entry.entry_id,
                job_id,
                self.settings.job_ttl_s,
                letter,
                outcome,
                busy_s=self._busy_s() if record is not None else 0.0,
            )
        )
        known = kind if kind in {"agents", "agency"} else "unknown"
        if not dead_id:
            self.steps.tell("already_finished", kind=known, not_buried=reason)
            return
        self.steps.tell(
            "dead",
            kind=known,
            cause=cause,
            error=reason,
            dead_id=dead_id,
            deliveries=entry.deliveries,
        )

    def _ack_only(self, entry: Entry, kind: str, status: str) -> None:
        """Ack an entry whose job already has an outcome, writing nothing else."""
        self.persist(
            lambda: self.records.finish(entry.entry_id, None, self.settings.job_ttl_s, None)
        )
        self.steps.tell("already_finished", kind=kind, status=status)

    def _hand_back(self, entry: Entry, job_id: str, kind: str, why: str) -> None:
        """Leave the entry pending but idle for a whole lease: another consumer takes it now."""
        handed = self.lease.hand_back(entry.entry_id)
        self.steps.tell("handed_back", kind=kind, reason=why, immediate=handed)
        self._note(job_id, "handed_back", kind, detail=why)

    # -- helpers ---------------------------------------------------------------------------------

    def _note(
        self,
        job_id: str,
        step: str,
        kind: str,
        *,
        deliveries: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Tell a step that changes no state, and put it on the timeline; a Redis blip loses
        the timeline line, never the job."""
        self.steps.tell(step, kind=kind, deliveries=deliveries)
        try:
            self.records.note(job_id, self.steps.event(step, deliveries=deliveries, detail=detail))
        except ServiceUnavailableError as exc:
            log.warning("report.timeline_skipped", timeline_event=step, error=str(exc))

    def _busy_s(self) -> float:
        return time.monotonic() - self._held_since

    def persist(self, op: Callable[[], T]) -> T:
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

    def _should_stop_render(self) -> bool:
        return self.lease.lost or self.lease.cancelled or self.should_give_up()

    def wait(self, delay_s: float) -> None:
        """Sleep ``delay_s`` holding the job; ``JobAbandonedError`` if we must stop first,
        ``JobCancelledError`` if the job was cancelled meanwhile."""
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:
            if self.lease.cancelled:
                raise JobCancelledError
            if self.lease.lost or self.should_give_up() or self.stopping.is_set():
                raise JobAbandonedError("stopping during retry back-off")
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _created_day(created_at: str | None) -> date:
    if created_at:
        try:
            return datetime.fromisoformat(created_at).date()
        except ValueError:
            pass
    return datetime.now(UTC).date()
