"""What happens to a report job's record (``agentlink:job:<id>``) while consumers work on it.

Each change of state is one script that checks before it writes: a consumer that stalled
past its lease and wakes up must never turn a job another consumer finished back into
``processing`` or ``retrying``, nor record a second outcome. The timeline event of a step
is written by the same script that records the step, so the timeline never tells of a
change that did not happen. Status changes keep the dashboard's indexes (by status, by
id, by suburb) and the history of outcomes exact (``lua/job_status.lua``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec

from agentlink.jobs import AttemptError, JobEvent, Status
from agentlink.stream.connection import call
from agentlink.stream.encoding import flatten, now_iso
from agentlink.stream.group import Entry
from agentlink.stream.keys import Keys
from agentlink.stream.scripts import SERVICE_EWMA_ALPHA, TIMELINE_CAP, Scripts

_json = msgspec.json.Encoder()

PRUNE_BATCH = 1000
"""Expired jobs dropped from the indexes per housekeeping round at most."""


def restore_options(restore: dict[str, str]) -> dict[str, Any]:
    """The options of a script that rebuilds a job's missing hash (``lua/index_job.lua``
    ``restore_job``): ``restore``, the hash as a field/value array, and ``where``, what
    its indexes need (empty both when there is nothing to restore)."""
    if not restore:
        return {"restore": [], "where": {}}
    where = {
        "created_ms": int(restore["created_ms"]),
        "state": restore["state"],
        "suburb": restore["suburb"].lower(),
    }
    return {"restore": flatten(restore), "where": where}


@dataclass(frozen=True, slots=True)
class Started:
    """An attempt just started: its number (-1 when the job had an outcome already, which
    is then ``status``), and what the record says about the job."""

    attempt: int
    status: str = ""
    request_id: str = ""
    created_at: str = ""
    cancel_requested: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ends: its status and the fields recorded with it."""

    status: Status
    fields: dict[str, str]
    events: list[JobEvent]
    record: AttemptError | None = None
    """The failed attempt's error record, appended to the job's error history."""


class JobRecords:
    """The job records of one key prefix, as consumer ``name`` changes them."""

    def __init__(self, client: Any, keys: Keys, name: str) -> None:
        self.client = client
        self.keys = keys
        self.name = name
        self.scripts = Scripts(client)
        self.indexes = keys.indexes

    def job(self, job_id: str) -> dict[str, str]:
        """The job hash (empty if it does not exist)."""
        return call(lambda: self.client.hgetall(self.keys.job(job_id)))

    def job_for_entry(self, entry_id: str) -> str | None:
        """The job id an unacked entry belongs to (from the entry index)."""
        job_id = call(lambda: self.client.hget(self.keys.index, entry_id))
        return str(job_id) if job_id else None

    def start(
        self, job_id: str, entry_id: str, event: JobEvent, *, restore: dict[str, str]
    ) -> Started:
        """Count an attempt and mark the job processing (the ``claimed`` event and the
        heartbeat's "busy" with it); ``restore`` (``restored_job_fields``) is written first,
        and indexed, if the job has no hash."""
        options = {
            "idx": self.indexes,
            "job_id": job_id,
            "entry_id": entry_id,
            "consumer": self.name,
            "started_at": now_iso(),
            "since": f"{time.time():.3f}",
            "event": event,
            "cap": TIMELINE_CAP,
            **restore_options(restore),
        }
        keys = [self.keys.job(job_id), self.keys.consumer(self.name)]
        reply = self.scripts.run("start.lua", keys, _json.encode(options))
        attempt = int(reply[0])
        if attempt < 0:
            return Started(attempt=-1, status=str(reply[1]))
        return Started(
            attempt=attempt,
            request_id=str(reply[1]),
            created_at=str(reply[2]),
            cancel_requested=bool(reply[3]),
        )

    def note(self, job_id: str, event: JobEvent, *, fold: bool = False) -> bool:
        """Add ``event`` to the job's timeline (with ``fold``, a repeat of the last event
        only bumps its count); no other change. False if the job does not exist."""
        options = {"event": event, "cap": TIMELINE_CAP, "fold": int(fold)}
        return bool(self.scripts.run("event.lua", [self.keys.job(job_id)], _json.encode(options)))

    def attempt_failed(
        self, job_id: str, record: AttemptError, events: list[JobEvent], *, status: Status
    ) -> bool:
        """Record a failed attempt that will be retried: status, last error, error history
        and the events, unless the job has an outcome already (False then)."""
        options = {
            "idx": self.indexes,
            "job_id": job_id,
            "status": status.value,
            "error": record.error,
            "record": record,
            "events": events,
            "cap": TIMELINE_CAP,
        }
        keys = [self.keys.job(job_id)]
        return bool(self.scripts.run("attempt_failed.lua", keys, _json.encode(options)))

    def waiting(self, job_id: str, error: str, event: JobEvent) -> bool:
        """Mark the job retrying with ``error`` while its consumer waits for something that
        is not the job's fault (a misconfigured storage); no error joins the history."""
        options = {
            "idx": self.indexes,
            "job_id": job_id,
            "status": Status.RETRYING.value,
            "error": error,
            "record": {},
            "events": [event],
            "cap": TIMELINE_CAP,
        }
        keys = [self.keys.job(job_id)]
        return bool(self.scripts.run("attempt_failed.lua", keys, _json.encode(options)))

    def finish(
        self,
        entry_id: str,
        job_id: str | None,
        ttl_s: int,
        outcome: Outcome | None,
        *,
        service_s: float = 0.0,
        busy_s: float = 0.0,
        take_next: bool = False,
    ) -> tuple[bool, Entry | None]:
        """Record ``outcome`` unless the job has one already, and XACK the entry: one step.

        Without ``outcome`` the entry is only acked (its job was finished elsewhere). The
        events join the timeline only with the outcome. Returns whether this outcome was
        recorded, and with ``take_next`` the consumer's next new entry (read in the same
        step: its slot is free now), if there is one.
        """
        options = {
            "idx": self.indexes,
            "group": self.keys.group,
            "entry_id": entry_id,
            "job_id": job_id or "",
            "ttl_s": ttl_s,
            "status": outcome.status.value if outcome else "",
            "fields": flatten(outcome.fields) if outcome else [],
            "record": (outcome.record if outcome and outcome.record else {}),
            "events": outcome.events if outcome else [],
            "cap": TIMELINE_CAP,
            "service_s": round(service_s, 3),
            "busy_s": round(busy_s, 3),
            "alpha": SERVICE_EWMA_ALPHA,
            "consumer": self.name,
            "next": int(take_next),
        }
        keys = [
            self.keys.stream,
            self.keys.job(job_id or "-"),
            self.keys.index,
            self.keys.callbacks.stream,
            self.keys.service_stats,
            self.keys.work_stats,
            self.keys.consumer(self.name),
        ]
        reply = self.scripts.run("finish.lua", keys, _json.encode(options))
        entry = None
        if len(reply) == 3:
            flat = reply[2]
            entry = Entry(str(reply[1]), dict(zip(flat[::2], flat[1::2], strict=True)), 1)
        return bool(reply[0]), entry

    def dead_letter(
        self,
        entry_id: str,
        job_id: str | None,
        ttl_s: int,
        letter: dict[str, str],
        outcome: Outcome,
        *,
        busy_s: float = 0.0,
    ) -> str:
        """Copy the entry to the dead letters, mark the job dead (with the outcome's fields
        and events) and XACK, atomically; '' when another consumer owns the entry now."""
        options = {
            "idx": self.indexes,
            "group": self.keys.group,
            "entry_id": entry_id,
            "job_id": job_id or "",
            "consumer": self.name,
            "ttl_s": ttl_s,
            "letter": flatten(letter),
            "record": outcome.record or {},
            "fields": flatten(outcome.fields),
            "events": outcome.events,
            "cap": TIMELINE_CAP,
            "busy_s": round(busy_s, 3),
        }
        keys = [
            self.keys.stream,
            self.keys.dead,
            self.keys.job(job_id or "-"),
            self.keys.index,
            self.keys.callbacks.stream,
            self.keys.consumer(self.name),
            self.keys.work_stats,
        ]
        return str(self.scripts.run("dead_letter.lua", keys, _json.encode(options)))

    def record_work(self, busy_s: float) -> None:
        """Add the busy time of an entry that got no outcome here (handed back) to the
        counters behind the scaling gauges (``agentlink.observe.capacity``)."""
        call(lambda: self.client.hincrbyfloat(self.keys.work_stats, "busy_s", round(busy_s, 3)))

    def prune(self, before_ms: int) -> int:
        """Drop jobs created before ``before_ms`` whose records expired from the indexes
        (at most ``PRUNE_BATCH``); returns how many."""
        options = {
            "idx": self.indexes,
            "statuses": [s.value for s in Status],
            "job_prefix": self.keys.job(""),
            "before_ms": before_ms,
            "limit": PRUNE_BATCH,
        }
        return int(self.scripts.run("prune_jobs.lua", [self.keys.jobs], _json.encode(options)))


@dataclass(frozen=True, slots=True)
class CancelCall:
    """What ``lua/cancel.lua`` is run with, for the API (async) and the CLI (sync) alike."""

    keys: list[str]
    options: bytes


CANCEL_VERDICTS = ("missing", "finished", "cancelled", "requested")
"""What ``lua/cancel.lua`` answers: no such job (or another tenant's), finished already,
cancelled now (it was queued), cancel requested (its consumer stops the render)."""


def cancel_call(keys: Keys, job_id: str, *, owner: str, ttl_s: int, by: str) -> CancelCall:
    """The keys and options that cancel ``job_id`` for ``owner`` (``""``: any job), ``by``
    saying who asked (the timeline event's detail and the recorded error)."""
    now = now_iso()
    options = {
        "idx": keys.indexes,
        "job_id": job_id,
        "owner": owner,
        "ttl_s": ttl_s,
        "finished_at": now,
        "error": f"cancelled by {by} before it was made",
        "event": JobEvent(event="cancelled", at=now, detail=f"by {by}"),
        "cap": TIMELINE_CAP,
    }
    return CancelCall([keys.job(job_id), keys.callbacks.stream], _json.encode(options))


def error_record(attempt: int, consumer: str, error: str, *, transient: bool) -> AttemptError:
    """An ``AttemptError`` stamped now."""
    return AttemptError(
        attempt=attempt, at=now_iso(), consumer=consumer, error=error, transient=transient
    )
