"""One consumer process: claim entries, make reports, record outcomes, ack.

The loop, in order of priority each round: entries of its own pending list (once, at
start), entries other consumers left idle for longer than a lease (XAUTOCLAIM, following
the cursor), then new entries (XREADGROUP COUNT 1 BLOCK). Each entry is handled by
``ReportJob``; this module owns the loop, the signals and the housekeeping.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

import structlog

from agentlink.settings import Settings
from agentlink.storage import Storage, create_storage
from agentlink.stream.connection import connect
from agentlink.stream.group import Entry, GroupMember
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords
from consumers import metrics
from consumers.job import ReportJob, Via
from consumers.lease import LeaseKeeper
from consumers.loop import StreamMember
from consumers.render_child import Renderer, ReportRenderer, rss_bytes

log = structlog.get_logger(__name__)

HOUSEKEEPING_EVERY_S = 60.0
RECLAIM_EVERY_S = 1.0
"""How often an idle-or-busy consumer looks for entries other consumers left stalled."""


class Consumer(StreamMember):
    """A consumer of the report stream with a stable name (``<AGENTLINK_CONSUMER_NAME>-<slot>``)."""

    role = "consumer"

    def __init__(
        self,
        settings: Settings,
        slot: int = 1,
        *,
        storage: Storage | None = None,
        renderer: ReportRenderer | None = None,
    ) -> None:
        """``storage`` and ``renderer`` default to the configured ones; benchmarks and
        fault injection pass their own (``bench/``)."""
        self.settings = settings
        self.name = f"{settings.consumer_name}-{slot}"
        # The socket timeout outlasts a blocking read.
        client = connect(settings.redis_url, timeout_s=settings.block_ms / 1000 + 10)
        keys = Keys(settings.key_prefix)
        self.member = GroupMember(client, keys, self.name)
        self.records = JobRecords(client, keys, self.name)
        self.lease = LeaseKeeper(self.member, lease_s=settings.lease_s, report_jobs=True)
        self.renderer: ReportRenderer = renderer or Renderer(
            data=settings.data,
            brand=settings.brand,
            timeout_s=settings.render_timeout_s,
            max_jobs=settings.render_max_jobs,
            max_rss_bytes=settings.render_max_rss_mb * 1024 * 1024,
        )
        self.stopping = threading.Event()
        self.stop_requested_at: float | None = None
        self.job = ReportJob(
            settings=settings,
            records=self.records,
            lease=self.lease,
            renderer=self.renderer,
            storage=storage or create_storage(settings),
            should_give_up=self._past_grace,
            stopping=self.stopping,
            may_take_next=self._may_take_next,
        )
        # The heartbeat carries this worker's memory, from which the API's memory budget
        # (agentlink_workers_memory_fit) is computed; the gauges show it per process.
        self.lease.stats = self._memory_stats
        metrics.RESIDENT_MEMORY.labels(process="consumer").set_function(
            lambda: rss_bytes(os.getpid())
        )
        metrics.RESIDENT_MEMORY.labels(process="render").set_function(self.renderer.rss_bytes)
        self._claim_cursor = "0-0"
        self._reclaim_after = 0.0
        self._next_reclaim = 0.0
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY_S

    # -- lifecycle -------------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Stop reading; finish the current job within the shutdown grace period."""
        if not self.stopping.is_set():
            self.stop_requested_at = time.monotonic()
            self.stopping.set()
            log.info("consumer.stopping", consumer=self.name, signal=signum)

    def _past_grace(self) -> bool:
        return (
            self.stop_requested_at is not None
            and time.monotonic() - self.stop_requested_at > self.settings.shutdown_grace_s
        )

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a graceful stop."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Consume until asked to stop; returns the process exit code."""
        structlog.contextvars.bind_contextvars(consumer=self.name)
        if not self.start_up():
            return 0
        self.lease.start()
        try:
            # ConfigurationError (a malformed sales file) ends the process, name released.
            self.renderer.start()
            log.info("consumer.started", consumer=self.name, lease_s=self.settings.lease_s)
            self.loop()
        finally:
            self.lease.stop()
            self.renderer.close()
            log.info("consumer.stopped", consumer=self.name)
        return 0

    # -- the loop --------------------------------------------------------------------------------

    def resume(self, entry: Entry) -> None:
        """An entry of this consumer's own pending list, left by a previous run."""
        log.info(
            "consumer.resuming_own_pending", entry_id=entry.entry_id, deliveries=entry.deliveries
        )
        self._handle(entry, via="resume")

    def step(self) -> None:
        """Housekeeping when due, then one reclaimed or one new entry."""
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._housekeeping()
        # Looking for stalled entries costs a round trip: once a second is soon enough
        # (a lease is 10 s), and at once again after one was found.
        if now >= self._next_reclaim:
            if self._reclaim_one():
                return
            self._next_reclaim = now + RECLAIM_EVERY_S
        entry = self.member.read_new(self.settings.block_ms)
        if entry is not None:
            self._handle(entry)

    def _reclaim_one(self) -> bool:
        """Take over one entry idle for longer than a lease; True if one was handled."""
        if not self.reclaim_allowed():
            return False
        cursor, entry, deleted = self.member.reclaim(self._claim_cursor, self.settings.lease_ms)
        self._claim_cursor = cursor
        for entry_id in deleted:
            self.job.entry_lost(entry_id)
        if entry is None:
            return False
        self._handle(entry, via="reclaim")
        return True

    def _handle(self, entry: Entry, via: Via = "read") -> None:
        """Handle ``entry``, then the new entries each outcome's script hands over."""
        next_entry: Entry | None = entry
        while next_entry is not None:
            try:
                next_entry = self.job.handle(next_entry, via=via)
            finally:
                structlog.contextvars.unbind_contextvars(
                    "job_id", "entry_id", "attempt", "request_id"
                )
            via = "read"

    def _may_take_next(self) -> bool:
        """Whether an outcome's script may read the next entry: not while stopping, nor when
        a look for stalled entries or housekeeping is due (those come first)."""
        now = time.monotonic()
        return (
            not self.stopping.is_set()
            and now < self._next_reclaim
            and now < self._next_housekeeping
        )

    def _memory_stats(self) -> dict[str, str]:
        """Heartbeat fields: the consumer's RSS and its render child's current and peak RSS."""
        render_rss, render_peak = self.renderer.memory()
        return {
            "rss": str(rss_bytes(os.getpid())),
            "render_rss": str(render_rss),
            "render_peak_rss": str(render_peak),
        }

    def _housekeeping(self) -> None:
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY_S
        removed = self.member.trim(self.settings.retention_s, lock_s=int(HOUSEKEEPING_EVERY_S))
        if removed:
            log.info("stream.trimmed", removed=removed)
        if removed is not None:  # this consumer's turn: the indexes too
            day_ms = 24 * 3600 * 1000
            before_ms = int(time.time() * 1000) - self.settings.job_ttl_s * 1000 - day_ms
            pruned = self.records.prune(before_ms)
            if pruned:
                log.info("jobs.pruned", dropped=pruned)
        idle_ms = max(3600_000, 10 * self.settings.lease_ms)
        forgotten = self.member.forget_idle_members(idle_ms, time.time() - idle_ms / 1000)
        if forgotten:
            log.info("consumer.forgot_idle_consumers", names=forgotten)
