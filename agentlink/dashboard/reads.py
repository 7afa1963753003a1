"""What the dashboard reads besides the job list: the queue and its workers, one job, and
the dead letters of reports and of callbacks, a page at a time.

The queue's figures are the ones ``/metrics`` exposes, read by the same code
(``agentlink.observe.stream_state``): backlog, lag, oldest pending age, estimated wait,
workers needed. Dead letters are paged with ``XREVRANGE`` from an exclusive id (newest
first), so 10,000 of them cost what 50 do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agentlink.api.store import JobStore
from agentlink.errors import JobNotFoundError
from agentlink.jobs import JobRecord, record_from_hash
from agentlink.observe.stream_state import ScalingConfig, StreamState, read_stream_state
from agentlink.settings import Settings
from agentlink.stream.deadletters import (
    DeadCallback,
    DeadLetter,
    dead_callback_from_fields,
    letter_from_fields,
)

LETTERS_PAGE = 25


@dataclass(frozen=True, slots=True)
class Worker:
    """A live consumer and the job it makes."""

    name: str
    state: str
    job_id: str | None
    kind: str
    suburb: str
    where: str
    """The job's state (NSW, …)."""
    for_s: float | None
    """How long it has been on this job."""
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class Overview:
    """The queue at this moment."""

    state: StreamState
    workers: list[Worker]
    dead_callbacks: int

    @property
    def wait_text(self) -> str:
        """The estimated wait of a job submitted now, in words."""
        wait = self.state.estimated_wait_s
        if math.isinf(wait):
            return "no worker takes jobs"
        if math.isnan(wait):
            return "unknown until a job completes"
        return duration(wait)


def duration(seconds: float | None) -> str:
    """``75.2`` -> ``"1 min 15 s"``; ``None`` -> ``"–"``."""
    if seconds is None or math.isnan(seconds):
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if 0 < seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


async def overview(store: JobStore, settings: Settings) -> Overview:
    """The stream state (as ``/metrics`` reads it), what each busy consumer makes, and the
    count of dead callbacks: three round trips."""
    config = ScalingConfig.from_settings(settings)
    state = await store.run(lambda: read_stream_state(store.client, store.keys, config))
    busy = [consumer for consumer in state.consumers if consumer.job]

    async def read() -> list[Any]:
        pipe = store.client.pipeline(transaction=False)
        for consumer in busy:
            pipe.hmget(store.keys.job(consumer.job or "-"), ["kind", "suburb", "state"])
        pipe.xlen(store.keys.callbacks.dead)
        return await pipe.execute()

    *jobs, dead_callbacks = await store.run(read)
    made = {consumer.name: job for consumer, job in zip(busy, jobs, strict=True)}
    workers = []
    for consumer in sorted(state.consumers, key=lambda c: c.name):
        kind, suburb, where = made.get(consumer.name, [None, None, None])
        workers.append(
            Worker(
                name=consumer.name,
                state=consumer.state,
                job_id=consumer.job,
                kind=kind or "",
                suburb=suburb or "",
                where=where or "",
                for_s=consumer.job_elapsed_s if consumer.job else None,
                rss_bytes=consumer.rss_bytes,
            )
        )
    return Overview(state=state, workers=workers, dead_callbacks=int(dead_callbacks))


@dataclass(frozen=True, slots=True)
class JobView:
    """One job as its page shows it: the record and what the record leaves out."""

    record: JobRecord
    owner: str
    callback_host: str
    highlight: str
    dead_id: str
    entry_id: str

    @property
    def running(self) -> bool:
        """Not finished: it can be cancelled."""
        return not self.record.status.finished

    @property
    def cancel_pending(self) -> bool:
        """A cancel was asked for and its consumer has not stopped yet."""
        return self.running and bool(self.record.cancel_requested)


async def job_hash(store: JobStore, job_id: str) -> dict[str, str]:
    """The job's hash as Redis holds it (empty if there is none)."""
    raw: Any = await store.run(lambda: store.client.hgetall(store.keys.job(job_id)))
    return {str(name): str(value) for name, value in raw.items()}


async def ids_starting(store: JobStore, prefix: str, limit: int = 2) -> list[str]:
    """Up to ``limit`` job ids that start with ``prefix`` (the lexical index of ids)."""
    found: Any = await store.run(
        lambda: store.client.zrangebylex(
            store.keys.job_ids, f"[{prefix}", f"({prefix}\xff", start=0, num=limit
        )
    )
    return [str(job_id) for job_id in found]


async def read_job(store: JobStore, job_id: str) -> JobView:
    """The job's hash as a ``JobView``; ``JobNotFoundError`` if there is none."""
    fields: dict[str, str] = await job_hash(store, job_id)
    if not fields.get("status"):
        raise JobNotFoundError(job_id)
    return JobView(
        record=record_from_hash(fields),
        owner=fields.get("owner", ""),
        callback_host=urlsplit(fields.get("callback_url", "")).hostname or "",
        highlight=fields.get("highlight", ""),
        dead_id=fields.get("dead_id", ""),
        entry_id=fields.get("entry_id", ""),
    )


@dataclass(slots=True)
class LetterPage:
    """A page of dead letters (or dead callbacks), newest first."""

    letters: list[Any] = field(default_factory=list)
    total: int = 0
    older: str | None = None
    """The id the next (older) page starts after; None on the last page."""
    newer: str | None = None
    """The id the previous (newer) page ends before; None on the first page."""


async def _letters(
    store: JobStore, stream: str, before: str, after: str, size: int
) -> tuple[list[tuple[str, dict[str, str]]], int, bool, bool]:
    """A page of ``stream``'s entries, newest first, older than ``before`` or newer than
    ``after`` (ids, exclusive); with whether more lie on each side."""

    async def read() -> list[Any]:
        pipe = store.client.pipeline(transaction=False)
        pipe.xlen(stream)
        if after:
            pipe.xrange(stream, f"({after}", "+", count=size + 1)
        else:
            pipe.xrevrange(stream, f"({before}" if before else "+", "-", count=size + 1)
        return await pipe.execute()

    total, rows = await store.run(read)
    more = len(rows) > size
    rows = rows[:size]
    if after:
        rows.reverse()
        return rows, int(total), True, more
    return rows, int(total), more, bool(before)


async def dead_letters(
    store: JobStore, *, before: str = "", after: str = "", size: int = LETTERS_PAGE
) -> LetterPage:
    """A page of report dead letters, with their error history."""
    rows, total, older, newer = await _letters(store, store.keys.dead, before, after, size)
    letters: list[DeadLetter] = [letter_from_fields(str(i), f) for i, f in rows]
    return _page(letters, total, older, newer)


async def dead_callbacks(
    store: JobStore, *, before: str = "", after: str = "", size: int = LETTERS_PAGE
) -> LetterPage:
    """A page of callbacks given up on."""
    stream = store.keys.callbacks.dead
    rows, total, older, newer = await _letters(store, stream, before, after, size)
    letters: list[DeadCallback] = [dead_callback_from_fields(str(i), f) for i, f in rows]
    return _page(letters, total, older, newer)


def _page(letters: list[Any], total: int, older: bool, newer: bool) -> LetterPage:
    return LetterPage(
        letters=letters,
        total=total,
        older=letters[-1].dead_id if letters and older else None,
        newer=letters[0].dead_id if letters and newer else None,
    )
