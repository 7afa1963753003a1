"""The notifier: POSTs a finished job's record to its ``callback_url``, signed, retried.

The outcome scripts (``finish.lua``, ``dead_letter.lua``, ``cancel.lua``) XADD a callback
entry to ``agentlink:callbacks`` in the same step that records a job's outcome. Notifiers
read that stream in the consumer group ``notifiers`` with the report consumers' discipline
— and their very code: ``GroupMember`` (COUNT 1, own pending first, XAUTOCLAIM following
the cursor) and ``LeaseKeeper`` (guarded lease renewal, a held name) run on
``CallbackKeys``.
So a notifier killed mid-delivery loses nothing: its entry is reclaimed after one lease
and delivered again (the receiver de-duplicates on ``job_id`` + status, or on
``X-AgentLink-Delivery``).

A delivery (``consumers.callback_sender``) never takes longer than
``AGENTLINK_CALLBACK_TIMEOUT_S`` and never reads more than 2 KiB of the receiver's answer.

Each delivery ends in one atomic settle script, and only while this notifier still owns
the entry: delivered → ack + delete; a timeout, a connection error, 408, 425, 429 or 5xx →
parked in ``agentlink:callbacks:delayed`` until its back-off is over (the loop moves due
ones back onto the stream) — no delivery waits behind another's back-off; any other answer,
a URL the SSRF guard now refuses, or ``AGENTLINK_CALLBACK_MAX_ATTEMPTS`` used up → copied to
``agentlink:callbacks:dead`` with the reason.

Every worker process runs one notifier thread (``consumers.__main__``); ``agentlink
callbacks`` (``python -m consumers.notifier``) runs one on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from types import FrameType
from typing import Literal

import httpx
import msgspec
import structlog

from agentlink.callbacks import CallbackPolicy
from agentlink.settings import Settings
from agentlink.stream.connection import call, connect
from agentlink.stream.encoding import flatten, now_iso
from agentlink.stream.group import Entry, GroupMember
from agentlink.stream.keys import Keys
from consumers.backoff import backoff_s
from consumers.callback_sender import Sender
from consumers.lease import LeaseKeeper
from consumers.loop import StreamMember
from consumers.process import start_process

log = structlog.get_logger(__name__)

PROMOTE_BATCH = 100


class Notifier(StreamMember):
    """Delivers callbacks until stopped (see the module docstring)."""

    role = "notifier"
    survive_errors = True

    def __init__(
        self, settings: Settings, name: str, *, stopping: threading.Event | None = None
    ) -> None:
        self.settings = settings
        self.name = name
        self.keys = Keys(settings.key_prefix).callbacks
        client = connect(settings.redis_url, timeout_s=settings.block_ms / 1000 + 10)
        self.member = GroupMember(client, self.keys, name)
        self.lease = LeaseKeeper(self.member, lease_s=settings.lease_s)
        self.sender = Sender(
            CallbackPolicy.from_settings(settings),
            settings.webhook_secret,
            settings.callback_timeout_s,
        )
        self.stopping = stopping or threading.Event()
        self._claim_cursor = "0-0"
        self._reclaim_after = 0.0

    def run(self) -> int:
        """Deliver until ``stopping`` is set; returns the exit code."""
        if not self.start_up():
            return 0
        self.lease.start()
        log.info(
            "notifier.started",
            notifier=self.name,
            signed=bool(self.settings.webhook_secret),
            hosts=list(self.settings.callback_hosts),
        )
        if not self.settings.webhook_secret:
            log.warning("notifier.unsigned", hint="set AGENTLINK_WEBHOOK_SECRET to sign callbacks")
        try:
            self.loop()
        finally:
            self.lease.stop()
            self.sender.close()
            log.info("notifier.stopped", notifier=self.name)
        return 0

    def resume(self, entry: Entry) -> None:
        """A callback of this notifier's own pending list, left by a previous run."""
        self.handle(entry)

    def step(self) -> None:
        """One round: move due retries back, reclaim one stalled entry, or read a new one."""
        self.promote_due()
        if self.reclaim_allowed():
            cursor, entry, _deleted = self.member.reclaim(
                self._claim_cursor, self.settings.lease_ms
            )
            self._claim_cursor = cursor
            if entry is not None:
                log.info("callback.reclaimed", entry_id=entry.entry_id, deliveries=entry.deliveries)
                self.handle(entry)
                return
        # Wake up in time for retries that fall due while we wait for new entries.
        block_ms = min(self.settings.block_ms, max(10, self._ms_to_next_due()))
        entry = self.member.read_new(block_ms)
        if entry is not None:
            self.handle(entry)

    def promote_due(self) -> int:
        """Move callbacks whose back-off is over from the delayed set to the stream."""
        keys = [self.keys.delayed, self.keys.stream]
        return int(self.member.scripts.run("callback_promote.lua", keys, PROMOTE_BATCH))

    def _ms_to_next_due(self) -> int:
        first = call(lambda: self.member.client.zrange(self.keys.delayed, 0, 0, withscores=True))
        if not first:
            return self.settings.block_ms
        return int(float(first[0][1]) - time.time() * 1000)

    def handle(self, entry: Entry) -> None:
        """Deliver one callback entry and settle it."""
        fields = entry.fields
        if not fields:  # deleted from the stream while pending: nothing left to send
            return
        job_id = fields.get("job_id", "")
        attempt = int(fields.get("attempt") or 1)
        delivery = fields.get("delivery") or entry.entry_id
        bound = structlog.contextvars.bound_contextvars(
            job_id=job_id, callback=delivery, attempt=attempt
        )
        with bound:
            if entry.deliveries > self.settings.max_deliveries:
                reason = (
                    f"delivered {entry.deliveries} times (AGENTLINK_MAX_DELIVERIES="
                    f"{self.settings.max_deliveries}); notifiers crashed or stalled on it"
                )
                self._settle_entry(
                    entry, "dead", fields=fields, delivery=delivery, attempt=attempt, detail=reason
                )
                return
            self.lease.hold(entry.entry_id, job_id, fresh=False)
            try:
                outcome = self.sender.deliver(fields, delivery, attempt)
            finally:
                self.lease.release()
            host = _host(fields.get("url", ""))
            if outcome.verdict == "delivered":
                self._settle_entry(
                    entry,
                    "done",
                    fields=fields,
                    delivery=delivery,
                    attempt=attempt,
                    detail=outcome.detail,
                )
                log.info("callback.delivered", host=host, detail=outcome.detail)
            elif outcome.verdict == "retry" and attempt < self.settings.callback_max_attempts:
                delay_s = backoff_s(
                    attempt,
                    base_s=self.settings.callback_retry_base_s,
                    max_s=self.settings.callback_retry_max_s,
                    retry_after_s=outcome.retry_after_s,
                )
                self._settle_entry(
                    entry,
                    "retry",
                    fields=fields,
                    delivery=delivery,
                    attempt=attempt,
                    detail=outcome.detail,
                    delay_s=delay_s,
                )
                log.warning(
                    "callback.retrying", host=host, error=outcome.detail, retry_in_s=delay_s
                )
            else:
                reason = outcome.detail
                if outcome.verdict == "retry":
                    reason = f"gave up after {attempt} attempts: {outcome.detail}"
                self._settle_entry(
                    entry, "dead", fields=fields, delivery=delivery, attempt=attempt, detail=reason
                )
                log.error("callback.dead", host=host, error=reason)

    def _settle_entry(
        self,
        entry: Entry,
        mode: Literal["done", "retry", "dead"],
        *,
        fields: dict[str, str],
        delivery: str,
        attempt: int,
        detail: str,
        delay_s: float = 0.0,
    ) -> None:
        item = {**fields, "delivery": delivery, "last_error": detail}
        if mode == "retry":
            item["attempt"] = str(attempt + 1)
        elif mode == "dead":
            item.update(error=detail, dead_at=now_iso(), deliveries=str(entry.deliveries))
        options = {
            "group": self.keys.group,
            "consumer": self.name,
            "entry_id": entry.entry_id,
            "mode": mode,
            "delay_ms": int(delay_s * 1000),
            "fields": flatten(item) if mode != "done" else [],
        }
        keys = [self.keys.stream, self.keys.delayed, self.keys.dead]
        settled = self.member.scripts.run("callback_settle.lua", keys, msgspec.json.encode(options))
        if not settled:
            log.warning("callback.lease_lost", entry_id=entry.entry_id, mode=mode)


def _host(url: str) -> str:
    """The URL's host, for logs: a Make webhook URL is a secret, its host is not."""
    with contextlib.suppress(ValueError):
        return httpx.URL(url).host
    return ""


def start_in_thread(settings: Settings, name: str) -> tuple[Notifier, threading.Thread]:
    """A notifier running in a daemon thread of this process (a worker's)."""
    notifier = Notifier(settings, name)

    def run() -> None:
        try:
            notifier.run()
        except Exception:
            log.exception("notifier.crashed", notifier=name)

    thread = threading.Thread(target=run, name="notifier", daemon=True)
    thread.start()
    return notifier, thread


def main(argv: list[str] | None = None) -> int:
    """``python -m consumers.notifier``: one notifier in the foreground until SIGTERM."""
    from consumers.lease import NameTakenError

    parser = argparse.ArgumentParser(
        prog="python -m consumers.notifier",
        description="Deliver finished jobs' callbacks from the Redis stream.",
    )
    parser.add_argument(
        "--slot", type=int, default=1, help="runs as <AGENTLINK_CONSUMER_NAME>-notifier-<slot>"
    )
    args = parser.parse_args(argv)
    settings = start_process("agentlink callbacks")
    if settings is None:
        return 2
    notifier = Notifier(settings, f"{settings.consumer_name}-notifier-{args.slot}")

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("notifier.stopping", signal=signum)
        notifier.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return notifier.run()
    except NameTakenError as exc:
        print(f"agentlink callbacks: {exc}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
