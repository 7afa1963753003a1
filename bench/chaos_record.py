"""What a chaos run records as it goes: the kills it made, the saves of the flaky storage,
the attempts the consumers logged, and the whole run handed to ``chaos_report.render``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_watch import Start, Submission, Track
from bench.harness import epoch_s


@dataclass(slots=True)
class ConsumerKill:
    """One ``kill -9`` of a consumer process."""

    slot: int
    name: str
    at: float
    jobs: set[str]  # candidates: heartbeat's job, jobs whose hash names it, its pending list
    pel: dict[str, int] | None  # job id -> idle ms of its entries pending on it (None: unread)


@dataclass(slots=True)
class RedisKill:
    """One ``kill -9`` of redis-server and its restart from the AOF."""

    at: float
    down_s: float
    acked_before: int
    missing_after: list[str]
    completed_before: int
    regressed: list[str]


@dataclass(slots=True)
class ChaosRun:
    """Everything a chaos run observed, handed to ``render``."""

    settings: dict[str, Any]
    submissions: list[Submission]
    tracks: dict[str, Track]
    final: dict[str, dict[str, str]]  # job hash of every submitted job ({} if none)
    orphans: dict[str, dict[str, str]]  # job hashes nobody got a 202 for
    saves: list[dict[str, Any]]
    consumer_kills: list[ConsumerKill]
    redis_kills: list[RedisKill]
    unexpected_exits: list[tuple[int, int | None]]
    output_dir: Path
    started_at: float
    faults_end_at: float
    drain_timed_out: bool
    dead_letters: int
    pending_at_end: int
    notes: list[str] = field(default_factory=list)


def read_saves(path: Path) -> list[dict[str, Any]]:
    """The save records FlakyStorage appended (a torn last line is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def log_starts(log_files: list[Path]) -> dict[str, list[Start]]:
    """Attempts from the consumers' ``report.claimed`` log events, per job id."""
    found: dict[str, list[Start]] = {}
    for path in log_files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") != "report.claimed" or "job_id" not in event:
                continue
            at = epoch_s(str(event.get("timestamp", "")).replace("Z", "+00:00"))
            if at is not None:
                start = Start(int(event.get("attempt", 0)), event.get("consumer", ""), at, "log")
                found.setdefault(event["job_id"], []).append(start)
    return found
