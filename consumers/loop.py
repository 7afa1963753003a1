"""The life of a stream member, shared by report consumers and callback notifiers.

Both start the same way (wait for Redis, create the group at 0, hold off reclaiming for a
lease after Redis restarts, take a name), resume their own pending entries first, and then
step until told to stop, riding out Redis outages: while Redis was away nobody could
renew, so idle times grew for live entries too, and reclaiming waits one more lease.
"""

from __future__ import annotations

import contextlib
import threading
import time

import structlog

from agentlink.errors import ServiceUnavailableError
from agentlink.settings import Settings
from agentlink.stream.group import Entry, GroupMember
from consumers.lease import LeaseKeeper

log = structlog.get_logger(__name__)


class StreamMember:
    """Start-up, own-pending drain and the outage-tolerant loop; subclasses ``step``."""

    role = "member"
    """Prefix of this member's log events (``consumer``, ``notifier``)."""
    survive_errors = False
    """Log and go on after an unexpected error (else it ends the process, to be restarted)."""

    settings: Settings
    member: GroupMember
    lease: LeaseKeeper
    stopping: threading.Event
    _reclaim_after: float

    def step(self) -> None:
        """One round of work."""
        raise NotImplementedError

    def resume(self, entry: Entry) -> None:
        """Handle an entry of this member's own pending list (left by a previous run)."""
        raise NotImplementedError

    def reclaim_allowed(self) -> bool:
        """False for a lease after start-up on a fresh Redis, or after an outage."""
        return time.monotonic() >= self._reclaim_after

    def start_up(self) -> bool:
        """Wait for Redis, create the group, take the name; False if stopped meanwhile."""
        delay = 0.5
        while not self.stopping.is_set():
            try:
                self.member.ensure_group()
                # A Redis that just restarted counts its downtime as idle time of every
                # pending entry; reclaim only once their owners have had a lease to renew.
                wait_s = max(0.0, self.settings.lease_s - self.member.uptime_s())
                self._reclaim_after = time.monotonic() + wait_s
                self.lease.acquire_name(wait_s=self.settings.lease_s + 2, stopping=self.stopping)
                if self.stopping.is_set():
                    # Stopped while taking the name (a SIGTERM during start-up): its first
                    # beat may already be in Redis; give it back rather than leave a
                    # heartbeat of a process that is gone.
                    self.lease.stop()
                    return False
                return True
            except ServiceUnavailableError as exc:
                log.warning(self._event("waiting_for_redis"), error=str(exc), retry_in_s=delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)
        return False

    def loop(self) -> None:
        """Resume own pending entries, then step until ``stopping`` is set."""
        drained = False
        while not self.stopping.is_set():
            try:
                if not drained:
                    self._drain_own_pending()
                    drained = True
                self.step()
            except ServiceUnavailableError as exc:
                log.warning(self._event("redis_unavailable"), error=str(exc))
                self._reclaim_after = time.monotonic() + self.settings.lease_s
                self.stopping.wait(1.0)
                if "NOGROUP" in str(exc):  # the stream or group was deleted under us
                    with contextlib.suppress(ServiceUnavailableError):
                        self.member.ensure_group()
            except Exception:
                if not self.survive_errors:
                    raise
                # E.g. Redis refusing writes: the entry stays pending and is retried or
                # reclaimed; this member must not die over it.
                log.exception(self._event("error"))
                self.stopping.wait(1.0)

    def _event(self, name: str) -> str:
        """``consumer.redis_unavailable``, ``notifier.redis_unavailable``…: one event name
        per role, so a dashboard or a grep tells the two apart."""
        return f"{self.role}.{name}"

    def _drain_own_pending(self) -> None:
        after = "0"
        while not self.stopping.is_set():
            entry = self.member.read_own_pending(after)
            if entry is None:
                return
            self.resume(entry)
            after = entry.entry_id
