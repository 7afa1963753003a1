"""The lease keeper: a thread that renews this consumer's claim while it works.

A render runs in a child process, but the upload and the retry back-off run in the
consumer's main thread; a separate thread renews the lease on the current entry every
third of ``AGENTLINK_LEASE_S`` whatever the main thread is doing, and keeps the consumer's
heartbeat (which also holds its name, so two live processes never share one). If a renewal
finds that another consumer now owns the entry, the lease is marked lost and the main
thread abandons the job instead of racing the new owner; if it finds that the job's
cancel was requested, the lease is marked cancelled and the render stops. While Redis is
unreachable it retries every ``OUTAGE_RETRY_S``, so the lease is renewed as soon as Redis
is back.
"""

from __future__ import annotations

import contextlib
import enum
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import structlog

from agentlink.errors import ServiceUnavailableError
from agentlink.jobs import JobEvent
from agentlink.stream.encoding import now_iso
from agentlink.stream.group import GroupMember
from agentlink.stream.scripts import TIMELINE_CAP
from consumers import metrics

log = structlog.get_logger(__name__)

OUTAGE_RETRY_S = 0.25
"""How often a failed renewal is tried again while Redis is unreachable."""


class Checkpoint(enum.Enum):
    """What a renewal right before storing says about the entry and its job."""

    OWNED = 1
    LOST = 0
    DELETED = -1
    CANCELLED = 2
    FINISHED = 3


class NameTakenError(Exception):
    """Another live process holds this consumer name."""


class LeaseKeeper:
    """Renews the lease of the entry being worked on, and beats the heartbeat."""

    def __init__(self, member: GroupMember, *, lease_s: float, report_jobs: bool = False) -> None:
        """``report_jobs``: the entries are report jobs, whose timeline records renewals,
        which can be cancelled, and whose lost leases are counted (not so for the
        notifier's callback entries)."""
        self.member = member
        self.report_jobs = report_jobs
        self.lease_ms = int(lease_s * 1000)
        self.every_s = lease_s / 3
        self.token = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._entry_id: str | None = None
        self._job_id = ""
        self._lost = threading.Event()
        self._cancelled = threading.Event()
        self.deleted = False
        self.state = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._held_since = 0.0
        self._confirmed_at = 0.0
        """``time.monotonic()`` when this consumer last knew it owned the entry (0: never)."""
        self.stats: Callable[[], dict[str, str]] = dict
        """Extra heartbeat fields (the worker's memory), read at every beat."""

    def acquire_name(self, wait_s: float, stopping: threading.Event) -> None:
        """Take this consumer's name, waiting up to ``wait_s`` for a dead holder's to lapse."""
        deadline = time.monotonic() + wait_s
        # Strict: "Redis did not answer" must not pass for "the name is ours" (the caller
        # retries start-up on ServiceUnavailableError).
        while not self._beat(strict=True) and not stopping.is_set():
            if self._holder_is_dead_here():
                continue
            if time.monotonic() > deadline:
                raise NameTakenError(
                    f"consumer name {self.member.name!r} is held by another live process; "
                    "set AGENTLINK_CONSUMER_NAME to a unique name per worker"
                )
            stopping.wait(min(1.0, self.every_s))

    def _holder_is_dead_here(self) -> bool:
        """Take the name over from a previous process on this host that is gone (kill -9,
        OOM kill): a restarted consumer then resumes its own pending entries at once instead
        of waiting a lease for the dead holder's claim to lapse."""
        holder = self.member.name_holder()
        if holder["host"] != socket.gethostname() or not holder["pid"].isdigit():
            return False
        pid = int(holder["pid"])
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            taken = self.member.take_over_name(holder["token"])
            if taken:
                log.info("consumer.name_taken_over", dead_pid=pid)
            return taken
        except PermissionError:
            return False  # a live process of another user
        return False

    def start(self) -> None:
        """Start renewing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and give the consumer name back."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.every_s + 5)
        with contextlib.suppress(ServiceUnavailableError):  # else it lapses after one lease
            self.member.release_name(self.token)

    def hold(self, entry_id: str, job_id: str, *, fresh: bool) -> None:
        """Start renewing ``entry_id`` (the consumer just took it; the script that starts
        the job says "busy" in the heartbeat). ``fresh``: Redis handed it over just now (a
        read of a new entry, or XAUTOCLAIM), which reset its idle time."""
        with self._lock:
            self._entry_id, self._job_id = entry_id, job_id
            self._held_since = time.time()
            self._confirmed_at = time.monotonic() if fresh else 0.0
            self._lost.clear()
            self._cancelled.clear()
            self.deleted = False

    def release(self, *, beat: bool = False) -> None:
        """Stop renewing the current entry (acked: the script that acked it said "idle" in
        the heartbeat; with ``beat``, handed back: say it now)."""
        with self._lock:
            held = self._entry_id is not None
            self._entry_id, self._job_id = None, ""
        if held and beat:
            self._beat()

    @property
    def lost(self) -> bool:
        """True once another consumer took the current entry over."""
        return self._lost.is_set()

    @property
    def cancelled(self) -> bool:
        """True once the current job's cancel was requested."""
        return self._cancelled.is_set()

    def hand_back(self, entry_id: str) -> bool:
        """Leave our entry idle for a whole lease, so another consumer reclaims it at once."""
        try:
            return self.member.renew(entry_id, idle_ms=self.lease_ms) == 1
        except ServiceUnavailableError:
            return False  # it becomes reclaimable when the lease lapses anyway

    def checkpoint(self, event: JobEvent) -> Checkpoint | None:
        """Say, right before storing, whether storing may go ahead; ``event`` (``rendered``)
        joins the job's timeline when it may.

        Nobody can take an entry over before it has been idle for a whole lease, so while
        less than a third of one has passed since this consumer last knew it owned the
        entry, the answer is known without asking Redis: None (go ahead; the event is then
        the caller's to record, with the outcome). Otherwise the lease is renewed now."""
        if (
            not self._lost.is_set()
            and not self._cancelled.is_set()
            and time.monotonic() - self._confirmed_at < self.every_s
        ):
            return None
        return self.renew(event=event, gate=True)

    def renew(self, *, event: JobEvent | None = None, gate: bool = False) -> Checkpoint:
        """Renew the lease on the current entry now (what the keeper thread does every
        third of a lease); ``gate``: also say whether storing may go ahead."""
        with self._lock:
            entry_id, job_id = self._entry_id, self._job_id
        if entry_id is None or self._lost.is_set():
            return Checkpoint.LOST if self._lost.is_set() else Checkpoint.OWNED
        job_key = self.member.keys.job(job_id) if self.report_jobs and job_id else ""
        outcome = Checkpoint(
            self.member.renew(entry_id, job_key=job_key, event=event, cap=TIMELINE_CAP, gate=gate)
        )
        with self._lock:
            # A renewal that raced with ack + hold(next entry) must not mark the next one.
            if self._entry_id != entry_id:
                return outcome
            if outcome in {Checkpoint.OWNED, Checkpoint.CANCELLED}:
                self._confirmed_at = time.monotonic()
            if outcome in {Checkpoint.LOST, Checkpoint.DELETED}:
                self.deleted = outcome is Checkpoint.DELETED
                self._lost.set()
                if self.report_jobs:
                    metrics.LEASES_LOST.inc()
            elif outcome is Checkpoint.CANCELLED:
                self._cancelled.set()
        return outcome

    def _beat(self, *, strict: bool = False) -> bool:
        with self._lock:
            job_id, entry_id = self._job_id, self._entry_id or ""
            since = f"{self._held_since:.3f}" if job_id else ""
        try:
            stats = self.stats()
        except Exception:  # a heartbeat without memory figures still holds the name
            log.exception("consumer.stats_failed")
            stats = {}
        try:
            return self.member.heartbeat(
                self.token,
                self.lease_ms,
                job=job_id,
                entry=entry_id,
                state=self.state or ("busy" if job_id else "idle"),
                host=socket.gethostname(),
                pid=str(os.getpid()),
                beat_at=now_iso(),
                job_since=since,
                **stats,
            )
        except ServiceUnavailableError as exc:
            if strict:
                raise
            log.warning("consumer.heartbeat_failed", error=str(exc))
            return True  # cannot tell; do not stop working over a blip

    def _run(self) -> None:
        wait_s, failing = self.every_s, False
        while not self._stop.wait(wait_s):
            wait_s = self.every_s
            # Nothing may kill this thread: without it every long job would be reclaimed.
            try:
                renewed = JobEvent(event="renewed", at=now_iso(), consumer=self.member.name)
                outcome = self.renew(event=renewed if self.report_jobs else None)
                if outcome in {Checkpoint.LOST, Checkpoint.DELETED}:
                    log.warning("lease.lost", entry_id=self._entry_id, deleted=self.deleted)
                if outcome is Checkpoint.CANCELLED:
                    log.info("lease.cancel_requested", job_id=self._job_id)
                if failing:
                    log.info("lease.renewed_after_outage", entry_id=self._entry_id)
                failing = False
                if not self._beat():
                    log.error("consumer.name_taken", consumer=self.member.name)
            except ServiceUnavailableError as exc:
                # Others reclaim once a lease has passed since the outage ended; renewing
                # at once when Redis is back, not up to a third of a lease later, keeps a
                # live job from looking abandoned.
                wait_s = min(self.every_s, OUTAGE_RETRY_S)
                if not failing:
                    log.warning("lease.renew_failed", error=str(exc), retry_every_s=wait_s)
                failing = True
            except Exception:
                log.exception("lease.keeper_error")
