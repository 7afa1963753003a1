"""Recording what happens to a job: its outcomes, its notes, surviving Redis blips.

``ReportJob`` (``consumers.job``) decides; this writes. Every write goes through
``persist``, which retries through a Redis outage until the write lands or the consumer
must stop: a PDF already stored must not be made again because its outcome was lost.
Each step is told (logged, counted) by ``consumers.lifecycle`` once its write is known.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from agentlink.errors import ServiceUnavailableError
from agentlink.jobs import AttemptError, JobEvent, Status
from agentlink.settings import Settings
from agentlink.stream.encoding import now_iso
from agentlink.stream.group import Entry
from agentlink.stream.records import JobRecords, Outcome, error_record
from consumers.lease import LeaseKeeper
from consumers.lifecycle import Lifecycle

log = structlog.get_logger("consumers.job")

T = TypeVar("T")

CANCELLED_ERROR = "cancelled before it was finished"


class JobAbandonedError(Exception):
    """The consumer stops working on the entry without an outcome (lease lost, shutdown)."""


class JobCancelledError(Exception):
    """The job's cancel was requested while this consumer made it."""


class JobRecorder:
    """Writes a consumer's job outcomes and notes, and tells them."""

    def __init__(
        self,
        *,
        settings: Settings,
        records: JobRecords,
        lease: LeaseKeeper,
        should_give_up: Callable[[], bool],
        stopping: threading.Event,
        may_take_next: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.records = records
        self.lease = lease
        self.should_give_up = should_give_up
        self.stopping = stopping
        self.may_take_next = may_take_next
        self.steps = Lifecycle(records.name)
        self.held_since = 0.0
        """``time.monotonic()`` when the consumer took the current entry."""
        self.next_entry: Entry | None = None
        """The next entry, read by the script that recorded the last outcome."""
        self.unwritten: list[JobEvent] = []
        """Timeline events of the current attempt that no script has written yet (they go
        with the next write: the outcome, or the failed attempt)."""

    def start(self) -> None:
        """A new entry: nothing read ahead, nothing unwritten."""
        self.next_entry = None
        self.unwritten.clear()

    def entry_lost(self, entry_id: str) -> None:
        """XAUTOCLAIM reported a pending entry deleted from the stream: fail its job."""
        # Only its own event: what an attempt left unwritten may be another job's (one handed
        # back before XAUTOCLAIM reported this entry).
        self.unwritten.clear()
        job_id = self.persist(lambda: self.records.job_for_entry(entry_id))
        error = "entry lost: the stream entry was deleted before it was processed; submit again"
        outcome = self.outcome(Status.FAILED, error=error, events=["entry_lost"])
        wrote, _ = self.persist(
            lambda: self.records.finish(entry_id, job_id, self.settings.job_ttl_s, outcome)
        )
        self.steps.tell("entry_lost", kind="unknown", recorded=wrote, lost_entry=entry_id)

    def outcome(
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
            if not any(e.event == "cancelled" for e in stamped):
                stamped.append(self.steps.event("cancelled"))
        written = {"finished_at": now_iso()}
        if error is not None:
            written["error"] = error
        return Outcome(status=status, fields=written, events=stamped, record=record)

    def record(
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
                busy_s=self.busy_s(),
                take_next=self.may_take_next(),
            )
        )
        self.steps.tell(
            outcome.status.value, kind=kind, recorded=wrote, entry_id=entry.entry_id, **told
        )

    def fail(self, entry: Entry, job_id: str, kind: str, attempt: int, error: str) -> None:
        record = error_record(attempt, self.records.name, error, transient=False)
        event = self.steps.event("failed", attempt=attempt, detail=error)
        outcome = self.outcome(Status.FAILED, error=error, events=[event], record=record)
        self.record(entry, job_id, kind, outcome, error=error)

    def cancelled(self, entry: Entry, job_id: str, kind: str) -> None:
        """Record the job cancelled: its cancel was requested while this consumer made it."""
        self.record(entry, job_id, kind, self.outcome(Status.CANCELLED))

    def dead(
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
        outcome = self.outcome(Status.DEAD, error=reason, events=[event], record=record)
        dead_id = self.persist(
            lambda: self.records.dead_letter(
                entry.entry_id,
                job_id,
                self.settings.job_ttl_s,
                letter,
                outcome,
                busy_s=self.busy_s() if record is not None else 0.0,
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

    def ack_only(self, entry: Entry, kind: str, status: str) -> None:
        """Ack an entry whose job already has an outcome, writing nothing else."""
        self.persist(
            lambda: self.records.finish(entry.entry_id, None, self.settings.job_ttl_s, None)
        )
        self.steps.tell("already_finished", kind=kind, status=status)

    def hand_back(self, entry: Entry, job_id: str, kind: str, why: str) -> None:
        """Leave the entry pending but idle for a whole lease: another consumer takes it now."""
        handed = self.lease.hand_back(entry.entry_id)
        self.steps.tell("handed_back", kind=kind, reason=why, immediate=handed)
        self.note(job_id, "handed_back", kind, detail=why)

    def note(
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

    def busy_s(self) -> float:
        return time.monotonic() - self.held_since

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
