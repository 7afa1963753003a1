"""A report job's steps, each told in one place: its log line, its metrics, its event.

Every step a consumer takes with a job (claimed, rendered, uploaded, completed, failed,
retrying, dead, cancelled, reclaimed, …) is one row of ``STEPS``: the level and name of
its log line and what it counts. ``event()`` makes the step's timeline event, which the
script that records the step writes in the same atomic call; ``tell()`` logs the step and
counts it once the step happened (an outcome only when it was the one recorded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from agentlink.jobs import JobEvent
from agentlink.stream.encoding import entry_time_s, now_iso
from consumers import metrics

log = structlog.get_logger("consumers.job")

DETAIL_CHARS = 300
"""Longest error text kept in a timeline event (the full text is in the error history)."""

Count = Callable[[str, dict[str, Any]], None]
"""Counts a step: (report kind, the step's fields)."""


def _outcome(outcome: str) -> Count:
    def count(kind: str, fields: dict[str, Any]) -> None:
        metrics.JOBS_FINISHED.labels(kind=kind, outcome=outcome).inc()
        if outcome == "completed" and fields.get("entry_id"):
            metrics.JOB_SECONDS.labels(kind=kind).observe(
                max(0.0, time.time() - entry_time_s(fields["entry_id"]))
            )
        if outcome == "dead":
            metrics.DEAD_LETTERS.labels(reason=fields.get("cause", "attempts")).inc()

    return count


def _claimed(kind: str, fields: dict[str, Any]) -> None:
    if fields.get("attempt") == 1 and fields.get("entry_id"):
        metrics.QUEUE_WAIT.observe(max(0.0, time.time() - entry_time_s(fields["entry_id"])))


def _seconds(histogram: Any, label: str) -> Count:
    def count(kind: str, fields: dict[str, Any]) -> None:
        value = kind if label == "kind" else fields.get(label, "")
        histogram.labels(**{label: value}).observe(fields.get("seconds", 0.0))

    return count


@dataclass(frozen=True, slots=True)
class Step:
    """How one step is told: its log line's level and event, and what it counts."""

    level: str
    log_event: str
    count: Count | None = None


STEPS: dict[str, Step] = {
    "claimed": Step("info", "report.claimed", _claimed),
    "rendered": Step("info", "report.rendered", _seconds(metrics.RENDER_SECONDS, "kind")),
    "uploaded": Step("info", "report.uploaded", _seconds(metrics.UPLOAD_SECONDS, "storage")),
    "completed": Step("info", "report.completed", _outcome("completed")),
    "failed": Step("warning", "report.failed", _outcome("failed")),
    "cancelled": Step("info", "report.cancelled", _outcome("cancelled")),
    "dead": Step("error", "report.dead", _outcome("dead")),
    "retrying": Step(
        "warning", "report.retrying", lambda kind, _: metrics.RETRIES.labels(kind=kind).inc()
    ),
    "reclaimed": Step("info", "report.reclaimed", lambda *_: metrics.RECLAIMED.inc()),
    "resumed": Step("info", "report.resumed"),
    "handed_back": Step("warning", "report.handed_back"),
    "already_finished": Step("info", "report.already_finished"),
    "entry_lost": Step("error", "report.entry_lost", lambda *_: metrics.ENTRIES_LOST.inc()),
}


class Lifecycle:
    """Tells the steps of the jobs of consumer ``consumer``."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    def event(
        self,
        step: str,
        *,
        attempt: int | None = None,
        deliveries: int | None = None,
        seconds: float | None = None,
        detail: str | None = None,
    ) -> JobEvent:
        """The timeline event of ``step`` by this consumer, stamped now."""
        return JobEvent(
            event=step,
            at=now_iso(),
            consumer=self.consumer,
            attempt=attempt,
            deliveries=deliveries,
            seconds=round(seconds, 3) if seconds is not None else None,
            detail=detail[:DETAIL_CHARS] if detail else None,
        )

    def tell(self, step: str, *, kind: str, recorded: bool = True, **fields: Any) -> None:
        """Log ``step`` and count it (an outcome only when ``recorded``: another consumer's
        outcome must not be counted twice)."""
        told = STEPS[step]
        if recorded and told.count is not None:
            told.count(kind, fields)
        shown = {k: v for k, v in fields.items() if k not in {"entry_id", "attempt"}}
        if "seconds" in shown:
            shown["seconds"] = round(shown["seconds"], 3)
        if not recorded:
            shown["recorded"] = False
        getattr(log, told.level)(told.log_event, **shown)
