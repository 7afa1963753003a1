"""``agentlink inspect``: the state of the queue at a glance (the ``rq info`` of AgentLink).

Everything comes from a handful of O(1) or bounded Redis calls (XINFO, XPENDING summary,
XPENDING extended form with a COUNT, XREVRANGE with a COUNT, one pipeline of HMGETs), so it
stays fast with 100k entries in the stream.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from typing import Any

import msgspec

from agentlink.stream.encoding import entry_time_s
from agentlink.stream.keys import Keys


class PendingEntry(msgspec.Struct):
    """One entry a consumer holds without having acked it."""

    entry_id: str
    consumer: str
    idle_s: float
    deliveries: int
    job_id: str | None


class ConsumerState(msgspec.Struct):
    """A consumer of the group, with its heartbeat."""

    name: str
    pending: int
    idle_s: float
    live: bool
    state: str
    job: str | None
    last_beat_s_ago: float | None


class Snapshot(msgspec.Struct):
    """What ``agentlink inspect --json`` prints."""

    stream: str
    length: int
    dead_letters: int
    group: str
    lag: int | None
    pending: int
    last_delivered_id: str | None
    oldest_pending_age_s: float | None
    consumers: list[ConsumerState]
    pending_entries: list[PendingEntry]
    recent_jobs: dict[str, int]


def snapshot(client: Any, keys: Keys, *, lease_s: float, pending_limit: int = 20) -> Snapshot:
    """Read the queue's state; ``client`` decodes responses to str."""
    now = time.time()
    length = int(client.xlen(keys.stream))
    dead = int(client.xlen(keys.dead))
    groups = client.xinfo_groups(keys.stream) if length or client.exists(keys.stream) else []
    group = next((g for g in groups if g["name"] == keys.group), None)
    summary: dict[str, Any] = (
        client.xpending(keys.stream, keys.group) if group else {"pending": 0, "min": None}
    )
    oldest = now - entry_time_s(summary["min"]) if summary.get("min") else None
    rows = client.xpending_range(keys.stream, keys.group, "-", "+", pending_limit) if group else []
    job_ids = client.hmget(keys.index, [row["message_id"] for row in rows]) if rows else []
    pending = [
        PendingEntry(
            entry_id=row["message_id"],
            consumer=row["consumer"],
            idle_s=round(row["time_since_delivered"] / 1000, 1),
            deliveries=int(row["times_delivered"]),
            job_id=job_id,
        )
        for row, job_id in zip(rows, job_ids, strict=True)
    ]
    consumers = _consumers(client, keys, now, lease_s) if group else []
    return Snapshot(
        stream=keys.stream,
        length=length,
        dead_letters=dead,
        group=keys.group,
        lag=group.get("lag") if group else None,
        pending=int(summary["pending"]),
        last_delivered_id=group.get("last-delivered-id") if group else None,
        oldest_pending_age_s=round(oldest, 1) if oldest is not None else None,
        consumers=consumers,
        pending_entries=pending,
        recent_jobs=_recent_statuses(client, keys),
    )


def _consumers(client: Any, keys: Keys, now: float, lease_s: float) -> list[ConsumerState]:
    infos = client.xinfo_consumers(keys.stream, keys.group)
    beats = dict(client.zrange(keys.consumers, 0, -1, withscores=True))
    names = sorted({i["name"] for i in infos} | set(beats))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(keys.consumer(name), ["state", "job"])
    details = dict(zip(names, pipe.execute(), strict=True))
    by_name: dict[str, dict[str, Any]] = {i["name"]: i for i in infos}
    states = []
    for name in names:
        info = by_name.get(name, {"pending": 0, "idle": 0})
        beat = beats.get(name)
        state, job = details[name]
        live = beat is not None and now - beat < 2 * lease_s
        states.append(
            ConsumerState(
                name=name,
                pending=int(info["pending"]),
                idle_s=round(int(info["idle"]) / 1000, 1),
                live=live,
                state=(state or "") if live else "gone",
                job=job or None,
                last_beat_s_ago=round(now - beat, 1) if beat is not None else None,
            )
        )
    return states


def _recent_statuses(client: Any, keys: Keys, count: int = 200) -> dict[str, int]:
    """Statuses of the jobs of the last ``count`` entries still in the stream."""
    entries = client.xrevrange(keys.stream, count=count)
    if not entries:
        return {}
    pipe = client.pipeline(transaction=False)
    for _, fields in entries:
        pipe.hget(keys.job(fields.get("job_id", "-")), "status")
    return dict(Counter(status or "expired" for status in pipe.execute()))


WIDTH = 80
"""The terminal view fits 80 columns; ``--json`` has every field in full."""


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render(snap: Snapshot) -> str:
    """The snapshot as text for an 80-column terminal (job ids shortened to 8 characters,
    as in the PDF file names; `agentlink job <id>` accepts the full id from --json)."""
    age = f"{snap.oldest_pending_age_s:g} s" if snap.oldest_pending_age_s is not None else "-"
    lag = snap.lag if snap.lag is not None else "-"
    hint = "  → agentlink dlq list" if snap.dead_letters else ""
    lines = [
        _fit(f"stream   {snap.stream}: {snap.length} entries", WIDTH),
        f"         {lag} waiting, {snap.pending} pending, oldest pending {age}",
        f"dead     {snap.dead_letters} dead letter(s){hint}",
        _fit(f"group    {snap.group}, last delivered {snap.last_delivered_id or '-'}", WIDTH),
        "",
        f"{'CONSUMER':<24} {'LIVE':<4} {'STATE':<14} {'PEND':>5} {'IDLE s':>8}  JOB",
    ]
    for c in snap.consumers:
        live = "yes" if c.live else "no"
        job = (c.job or "")[:8]
        lines.append(
            f"{_fit(c.name, 24):<24} {live:<4} {_fit(c.state, 14):<14} {c.pending:>5} "
            f"{c.idle_s:>8g}  {job}"
        )
    if not snap.consumers:
        lines.append("(no consumers: start one with `agentlink worker`)")
    if snap.pending_entries:
        lines += ["", f"{'PENDING ENTRY':<20} {'CONSUMER':<24} {'IDLE s':>8} {'DELIV':>5}  JOB"]
        for p in snap.pending_entries:
            job = (p.job_id or "?")[:8]
            lines.append(
                f"{_fit(p.entry_id, 20):<20} {_fit(p.consumer, 24):<24} {p.idle_s:>8g} "
                f"{p.deliveries:>5}  {job}"
            )
    recent = ", ".join(f"{k} {v}" for k, v in sorted(snap.recent_jobs.items())) or "none"
    lines.append("")
    lines += textwrap.wrap(
        f"recent jobs (last 200 entries): {recent}", WIDTH, subsequent_indent="  "
    )
    return "\n".join(lines)
