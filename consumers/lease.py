"""The lease keeper: a thread that renews this consumer's claim while it works.

A render runs in a child process, but the upload and the retry back-off run in the
consumer's main thread; a separate thread renews the lease on the current entry every
third of ``AGENTLINK_LEASE_S`` whatever the main thread is doing, and keeps the consumer's
heartbeat (which also holds its name, so two live processes never share one). If a renewal
finds that another consumer now owns the entry, the lease is marked lost and the main
thread abandons the job instead of racing the new owner. While Redis is unreachable it
retries every ``OUTAGE_RETRY_S``, so the lease is renewed as soon as Redis is back.
"""

from __future__ import annotations

import contextlib
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
from agentlink.stream.queue import ReportQueue
from consumers import metrics

log = structlog.get_logger(__name__)


OUTAGE_RETRY_S = 0.25
"""How often a failed renewal is tried again while Redis is unreachable."""


class NameTakenError(Exception):
    """Another live process holds this consumer name."""


class LeaseKeeper:
    """Renews the lease of the entry being worked on, and beats the heartbeat."""

    def __init__(self, queue: ReportQueue, *, lease_s: float, report_jobs: bool = False) -> None:
        """``report_jobs``: the entries are report jobs, whose timeline records renewals and
        whose lost leases are counted (not so for the notifier's callback entries)."""
        self.queue = queue
        self.report_jobs = report_jobs
        self.lease_ms = int(lease_s * 1000)
        self.every_s = lease_s / 3
        self.token = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._entry_id: str | None = None
        self._job_id = ""
        self._lost = threading.Event()
        self.deleted = False
        self.state = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self.renewals = 0
        self._held_since = 0.0
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
                    f"consumer name {self.queue.consumer!r} is held by another live process; "
                    "set AGENTLINK_CONSUMER_NAME to a unique name per worker"
                )
            stopping.wait(min(1.0, self.every_s))

    def _holder_is_dead_here(self) -> bool:
        """Take the name over from a previous process on this host that is gone (kill -9,
        OOM kill): a restarted consumer then resumes its own pending entries at once instead
        of waiting a lease for the dead holder's claim to lapse."""
        holder = self.queue.name_holder()
        if holder["host"] != socket.gethostname() or not holder["pid"].isdigit():
            return False
        pid = int(holder["pid"])
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            taken = self.queue.take_over_name(holder["token"])
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
            self.queue.release_name(self.token)

    def hold(self, entry_id: str, job_id: str) -> None:
        """Start renewing ``entry_id`` (the consumer just took it)."""
        with self._lock:
            self._entry_id, self._job_id = entry_id, job_id
            self._held_since = time.time()
            self._lost.clear()
            self.deleted = False
        self._beat()

    def release(self) -> None:
        """Stop renewing the current entry (acked, or handed back)."""
        with self._lock:
            held = self._entry_id is not None
            self._entry_id, self._job_id = None, ""
        if held:
            self._beat()  # say "idle" now, not a third of a lease later

    @property
    def lost(self) -> bool:
        """True once another consumer took the current entry over."""
        return self._lost.is_set()

    def check(self) -> bool:
        """Renew now and say whether we still own the entry (used right before storing)."""
        with self._lock:
            entry_id = self._entry_id
        if entry_id is None or self._lost.is_set():
            return not self._lost.is_set()
        outcome = self.queue.renew(entry_id)
        if outcome != 1:
            with self._lock:
                # A renewal that raced with ack + hold(next entry) must not mark the next one.
                if self._entry_id == entry_id:
                    self.deleted = outcome == -1
                    self._lost.set()
                    if self.report_jobs:
                        metrics.LEASES_LOST.inc()
        return not self._lost.is_set()

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
            return self.queue.heartbeat(
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

    def _note_renewal(self) -> None:
        """Add the renewal to the job's timeline (consecutive ones fold into one event)."""
        with self._lock:
            job_id = self._job_id
        if job_id and self.report_jobs:
            event = JobEvent(event="renewed", at=now_iso(), consumer=self.queue.consumer)
            # The timeline is a record, not the lease: never let it cost a heartbeat.
            with contextlib.suppress(ServiceUnavailableError):
                self.queue.event(job_id, event, renewal=True)

    def _run(self) -> None:
        wait_s, failing = self.every_s, False
        while not self._stop.wait(wait_s):
            wait_s = self.every_s
            # Nothing may kill this thread: without it every long job would be reclaimed.
            try:
                if self.check():
                    self.renewals += 1
                    self._note_renewal()
                else:
                    log.warning("lease.lost", entry_id=self._entry_id, deleted=self.deleted)
                if failing:
                    log.info("lease.renewed_after_outage", entry_id=self._entry_id)
                failing = False
                if not self._beat():
                    log.error("consumer.name_taken", consumer=self.queue.consumer)
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
