"""What a chaos run found: lost and duplicated jobs, reclaim times, Redis restarts.

Definitions (bench/README.md explains them to the reader of the printed report):

- *submitted*: the API answered 202 with a job id.
- *lost*: submitted, but at the end there is no job hash, or the job never finished
  (``completed``/``failed``/``dead``) within the drain timeout; also a completed job whose
  PDF is not on disk.
- *duplicated*: a job whose PDF was saved again *after* its completion had been recorded
  (a save later than the job's first ``finished_at``): an effect the design promises never
  happens. Separately, *saved more than once*: jobs stored twice or more at all, which
  at-least-once delivery allows (same deterministic path, so the file is overwritten) when
  a consumer dies, or Redis goes away, between storing the PDF and recording the outcome.
- *reclaim time*: for each job in progress on a consumer when it was ``kill -9``-ed, the
  time from the kill to the job's next ``started_at`` (any consumer, including the killed
  slot once restarted).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.chaos_record import ChaosRun
from bench.chaos_watch import FINISHED
from bench.harness import epoch_s, median, seconds, table

# finished_at is cut to whole milliseconds; a save can look up to 1 ms later than it was.
_CLOCK_SLACK_S = 0.001


def _saves_per_job(run: ChaosRun) -> tuple[dict[str, list[dict[str, Any]]], int, int]:
    """Successful saves per job id, plus (injected failures, saves matching no known job)."""
    by_prefix: dict[str, list[str]] = {}
    for job_id in [*run.final, *run.orphans]:
        by_prefix.setdefault(job_id[:8], []).append(job_id)
    per_job: dict[str, list[dict[str, Any]]] = {}
    failures = unmatched = 0
    for save in run.saves:
        if not save.get("ok"):
            failures += 1
            continue
        prefix = str(save["path"]).rsplit("-", 1)[-1].removesuffix(".pdf")
        owners = by_prefix.get(prefix, [])
        if len(owners) != 1:
            unmatched += 1
            continue
        per_job.setdefault(owners[0], []).append(save)
    return per_job, failures, unmatched


def _first_finished(run: ChaosRun, job_id: str) -> float | None:
    candidates = [
        run.tracks[job_id].first_finished_at if job_id in run.tracks else None,
        epoch_s(run.final.get(job_id, {}).get("finished_at")),
    ]
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def _why_saved_twice(run: ChaosRun, saves: list[dict[str, Any]]) -> str:
    """The likeliest reason the first save was not the last one."""
    first = saves[0]
    after = [s["t"] for s in saves[1:]]
    for kill in run.consumer_kills:
        if kill.name == first["consumer"] and first["t"] <= kill.at <= after[0]:
            return "consumer killed after storing, before recording"
    for outage in run.redis_kills:
        if first["t"] - 1 <= outage.at <= after[0]:
            return "Redis killed while recording the outcome"
    return "other (lease lost or outcome write failed)"


@dataclass(slots=True)
class Reclaims:
    """Reclaim times after consumer kills, and the candidates that did not count."""

    measured: list[tuple[float, str]] = field(default_factory=list)  # (seconds, by whom)
    unmeasured: int = 0  # in progress, but no later start seen
    stalled: int = 0  # pending on it, but not renewed for a while (earlier kill, outage)
    not_in_progress: int = 0  # candidates that were finished or elsewhere at the kill
    details: list[dict[str, Any]] = field(default_factory=list)


def reclaims(run: ChaosRun, lease_s: float) -> Reclaims:
    """The time from each consumer kill to the next start of each job it was working on.

    A job was in progress on the killed consumer if its last start before the kill was by
    that consumer, it was not finished, and (when the pending list could be read) its entry
    was pending on that consumer and renewed within the last renewal period: an entry left
    idle since a Redis outage was already waiting for its lease to lapse, so the kill did
    not cause its wait.
    """
    found = Reclaims()
    renewed_within_ms = (lease_s / 3 + 2) * 1000
    for kill in run.consumer_kills:
        for job_id in sorted(kill.jobs):
            track = run.tracks.get(job_id)
            starts = sorted(track.starts.values(), key=lambda s: s.at) if track else []
            before = [s for s in starts if s.at <= kill.at]
            finished = _first_finished(run, job_id)
            detail: dict[str, Any] = {"slot": kill.slot, "at": kill.at, "job_id": job_id}
            found.details.append(detail)
            if not before or before[-1].consumer != kill.name or (finished or 1e18) <= kill.at:
                found.not_in_progress += 1
                detail["counted"] = "not in progress"
                continue
            if kill.pel is not None:
                idle_ms = kill.pel.get(job_id)
                detail["idle_ms"] = idle_ms
                if idle_ms is None:
                    found.not_in_progress += 1
                    detail["counted"] = "not pending on the killed consumer"
                    continue
                if idle_ms > renewed_within_ms:
                    found.stalled += 1
                    detail["counted"] = "already idle before this kill"
                    continue
            later = [s for s in starts if s.at > kill.at]
            if not later:
                found.unmeasured += 1
                detail["counted"] = "no later start seen"
                continue
            by = "restarted same slot" if later[0].consumer == kill.name else "another consumer"
            found.measured.append((later[0].at - kill.at, by))
            waited = later[0].at - kill.at
            detail.update(
                counted="measured",
                seconds=waited,
                by=later[0].consumer,
                # Why a reclaim can outlast a lease: the slot died again while restarting,
                # or Redis was down in between.
                slot_killed_again=sum(
                    1
                    for k in run.consumer_kills
                    if k.slot == kill.slot and 0 < k.at - kill.at < waited
                ),
                redis_down_between=any(0 < r.at - kill.at < waited for r in run.redis_kills),
            )
    return found


def _slowest(found: Reclaims) -> str:
    measured = [d for d in found.details if d.get("counted") == "measured"]
    if not measured:
        return ""
    worst = max(measured, key=lambda d: float(d["seconds"]))
    return (
        f"job {str(worst['job_id'])[:8]} by {worst['by']}; its slot killed again meanwhile "
        f"{worst['slot_killed_again']} x, Redis down meanwhile: "
        f"{'yes' if worst['redis_down_between'] else 'no'}"
    )


def render(run: ChaosRun) -> tuple[str, int, int]:
    """The printed report, the number of lost jobs and of jobs duplicated after completion."""
    out: list[str] = []
    subs = run.submissions
    accepted = [s for s in subs if s.job_id]
    statuses = Counter(h.get("status", "") for h in run.final.values())
    no_record = [j for j, h in run.final.items() if not h]
    unfinished = [j for j, h in run.final.items() if h and h.get("status") not in FINISHED]
    no_pdf = [
        j
        for j, h in run.final.items()
        if h.get("status") == "completed"
        and not (run.output_dir / h.get("result_path", "\0")).is_file()
    ]
    lost = len(no_record) + len(unfinished) + len(no_pdf)

    per_job, failures, unmatched = _saves_per_job(run)
    saved_twice = {j: s for j, s in per_job.items() if len(s) > 1}
    after_completion = []
    for job_id, saves in per_job.items():
        finished = _first_finished(run, job_id)
        if finished is not None and run.final.get(job_id, {}).get("status") == "completed":
            late = [s for s in saves if s["t"] > finished + _CLOCK_SLACK_S]
            if late:
                after_completion.append(job_id)
    reasons = Counter(
        _why_saved_twice(run, sorted(s, key=lambda x: x["t"])) for s in saved_twice.values()
    )
    ok_saves = sum(len(s) for s in per_job.values())

    finished_at = [t for h in run.final.values() if (t := epoch_s(h.get("finished_at")))]
    last_finished = max(finished_at, default=float("nan"))
    drain = max(0.0, last_finished - run.faults_end_at)
    first_accept = min((s.accepted_at for s in accepted if s.accepted_at), default=float("nan"))

    out.append("Settings: " + ", ".join(f"{k}={v}" for k, v in run.settings.items()))
    out.append("")
    out.append("Jobs")
    rows = [
        ["planned", str(len(subs)), ""],
        [
            "submitted (202 with a job id)",
            str(len(accepted)),
            f"{sum(s.tries for s in subs)} POSTs: {sum(s.unavailable for s in subs)} x 503, "
            f"{sum(s.server_errors for s in subs)} x 500, "
            f"{sum(s.throttled for s in subs)} x 429, "
            f"{sum(s.transport_errors for s in subs)} x connection error, retried",
        ],
        [
            "not submitted (gave up / 4xx)",
            str(len(subs) - len(accepted)),
            next((s.rejected for s in subs if s.rejected), ""),
        ],
        ["completed", str(statuses["completed"]), ""],
        ["failed", str(statuses["failed"]), "permanent error"],
        ["dead", str(statuses["dead"]), f"dead-letter stream holds {run.dead_letters}"],
        [
            "lost",
            str(lost),
            f"no job record {len(no_record)}, never finished {len(unfinished)}, "
            f"completed without its PDF {len(no_pdf)}",
        ],
        [
            "unconfirmed jobs in Redis",
            str(len(run.orphans)),
            "accepted by Redis, but the client saw no 202 (it retried): "
            + (
                ", ".join(
                    f"{k} {v}"
                    for k, v in Counter(h.get("status") for h in run.orphans.values()).items()
                )
                or "-"
            ),
        ],
        ["pending entries at the end", str(run.pending_at_end), "XPENDING of the group"],
    ]
    out.append(table(["", "count", "notes"], rows, align="lrl"))

    out.append("")
    out.append("Effects (FlakyStorage save records)")
    out.append(
        table(
            ["", "count", "notes"],
            [
                [
                    "saves",
                    str(ok_saves),
                    f"+ {failures} injected failures "
                    f"({failures / max(1, failures + ok_saves):.1%} of calls), "
                    f"{unmatched} unmatched",
                ],
                [
                    "duplicated after completion",
                    str(len(after_completion)),
                    "saved again after its outcome was recorded (must be 0)",
                ],
                [
                    "saved more than once at all",
                    str(len(saved_twice)),
                    "; ".join(f"{n} x {why}" for why, n in reasons.most_common()) or "-",
                ],
            ],
            align="lrl",
        )
    )

    found = reclaims(run, float(run.settings["lease_s"]))
    times = [t for t, _ in found.measured]
    by = Counter(who for _, who in found.measured)
    out.append("")
    out.append("Faults")
    out.append(
        table(
            ["", "value", "notes"],
            [
                [
                    "consumer kill -9",
                    str(len(run.consumer_kills)),
                    f"unexpected consumer exits {len(run.unexpected_exits)}"
                    + (f" {run.unexpected_exits[:5]}" if run.unexpected_exits else ""),
                ],
                [
                    "reclaim after kill -9, median",
                    seconds(median(times)),
                    f"{len(found.measured)} in-progress jobs: "
                    + ", ".join(f"{n} by {who}" for who, n in by.most_common())
                    + f"; {found.unmeasured} unmeasured; not counted: {found.stalled} "
                    f"already idle before the kill (earlier kill or Redis outage), "
                    f"{found.not_in_progress} not in progress",
                ],
                [
                    "reclaim after kill -9, max",
                    seconds(max(times, default=float("nan"))),
                    _slowest(found),
                ],
                *[
                    [
                        f"redis kill -9 #{i}",
                        f"down {k.down_s:.1f} s",
                        f"acked before the kill and missing after restart: "
                        f"{len(k.missing_after)}/{k.acked_before}; completed before and not "
                        f"completed after: {len(k.regressed)}/{k.completed_before}",
                    ]
                    for i, k in enumerate(run.redis_kills, 1)
                ],
                [
                    "time to drain",
                    seconds(drain) + (" (TIMED OUT)" if run.drain_timed_out else ""),
                    "faults stopped → last job finished",
                ],
                [
                    "throughput under chaos",
                    f"{len(finished_at) / max(1e-9, last_finished - first_accept):.2f} jobs/s",
                    "finished jobs / (first 202 → last finished_at)",
                ],
            ],
            align="lrl",
        )
    )
    if run.notes:
        out.append("")
        out.extend(f"note: {n}" for n in run.notes)
    examples = [*no_record[:3], *unfinished[:3], *no_pdf[:3]]
    if examples:
        out.append("")
        out.append("lost jobs, e.g.: " + "; ".join(f"{j} {run.final.get(j)}" for j in examples))
    if after_completion:
        out.append("duplicated after completion, e.g.: " + ", ".join(after_completion[:5]))
    out.append("")
    out.append(f"lost={lost} duplicated={len(after_completion)}")
    return "\n".join(out), lost, len(after_completion)
