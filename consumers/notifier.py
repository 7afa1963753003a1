"""The notifier: POSTs a finished job's record to its ``callback_url``, signed, retried.

The outcome scripts (``FINISH_LUA``, ``DEAD_LETTER_LUA``) XADD a callback entry to
``agentlink:callbacks`` in the same step that records a job's outcome. Notifiers read that
stream in the consumer group ``notifiers`` with the report consumers' discipline — and
their very code: ``ReportQueue`` (COUNT 1, own pending first, XAUTOCLAIM following the
cursor) and ``LeaseKeeper`` (guarded lease renewal, a held name) run on ``CallbackKeys``.
So a notifier killed mid-delivery loses nothing: its entry is reclaimed after one lease
and delivered again (the receiver de-duplicates on ``job_id`` + status, or on
``X-AgentLink-Delivery``).

A delivery never takes longer than ``AGENTLINK_CALLBACK_TIMEOUT_S`` in all (resolving,
connecting, sending, answer), and the receiver's body is streamed: a 2xx is not read at
all, an error's first 2 KiB are kept for the message — a receiver cannot make a worker
hold a huge or endless answer in memory.

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
import asyncio
import contextlib
import random
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Literal

import httpx
import msgspec
import structlog

from agentlink.callbacks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackDnsError,
    CallbackPolicy,
    CallbackTarget,
    CallbackUrlError,
    sign,
)
from agentlink.errors import ConfigurationError
from agentlink.jobs import record_from_hash
from agentlink.observe.redaction import redact_urls
from agentlink.settings import Settings
from agentlink.stream.encoding import flatten, now_iso
from agentlink.stream.keys import Keys
from agentlink.stream.queue import Entry, ReportQueue, connect
from agentlink.stream.scripts import CALLBACK_PROMOTE_LUA, CALLBACK_SETTLE_LUA
from consumers.lease import LeaseKeeper
from consumers.loop import StreamMember

log = structlog.get_logger(__name__)

USER_AGENT = "AgentLink-Callback/1"
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
PROMOTE_BATCH = 100
EXCERPT_BYTES = 2048
"""At most this much of a receiver's body is read (and only of an error answer)."""
EXCERPT_CHARS = 200
"""At most this much of it goes into the error message."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery attempt ended."""

    verdict: Literal["delivered", "retry", "give_up"]
    detail: str
    retry_after_s: float | None = None


class Sender:
    """Delivers one callback: re-checks the URL, pins the connection, signs the body."""

    def __init__(self, policy: CallbackPolicy, secret: str, timeout_s: float) -> None:
        self.policy = policy
        self.secret = secret
        self.timeout_s = timeout_s
        self.ssl: ssl.SSLContext = httpx.create_ssl_context()
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        """Free the event loop."""
        self.loop.close()

    def deliver(self, fields: dict[str, str], delivery: str, attempt: int) -> Outcome:
        """POST the callback of ``fields`` once; never longer than the timeout in all."""
        return self.loop.run_until_complete(self._deliver(fields, delivery, attempt))

    async def _deliver(self, fields: dict[str, str], delivery: str, attempt: int) -> Outcome:
        answer = Answer()
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._post(fields, delivery, attempt, answer)
        except TimeoutError:
            # The answer may have come, with a body too slow to read: the status decides.
            return answer.outcome() if answer.status else self._no_answer()

    async def _post(
        self, fields: dict[str, str], delivery: str, attempt: int, answer: Answer
    ) -> Outcome:
        try:
            target = self.policy.check_url(fields.get("url", ""))
            # Resolved again now: a DNS answer that turned private since submission is
            # refused, and the connection goes to the address that passed.
            addresses = await self.policy.resolve(target, self.timeout_s)
        except CallbackDnsError as exc:
            return Outcome("retry", str(exc))
        except CallbackUrlError as exc:
            return Outcome("give_up", f"refused at delivery: {exc}")
        try:
            body = encode_record(fields)
        except (ValueError, KeyError, msgspec.DecodeError) as exc:
            return Outcome("give_up", f"unreadable job record: {exc}")
        timestamp = str(int(time.time()))
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",  # the excerpt we read is for people: no gzip bombs
            "X-AgentLink-Event": f"job.{fields.get('status', '')}",
            "X-AgentLink-Job-Id": fields.get("job_id", ""),
            "X-AgentLink-Delivery": delivery,
            "X-AgentLink-Attempt": str(attempt),
            TIMESTAMP_HEADER: timestamp,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        return await self._send(target, addresses, body, headers, answer)

    async def _send(
        self,
        target: CallbackTarget,
        addresses: list[str],
        body: bytes,
        headers: dict[str, str],
        answer: Answer,
    ) -> Outcome:
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        answer.secret_path = target.target
        outcome = Outcome("retry", "no address to connect to")
        async with httpx.AsyncClient(
            verify=self.ssl,
            timeout=self.timeout_s,
            follow_redirects=False,  # a redirect could point anywhere, past the guard
            trust_env=False,  # a proxy would undo the pinning
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            for address in addresses:  # each one checked; the next only if connecting fails
                try:
                    # Streamed: the receiver's body is read only for an error's excerpt, and
                    # at most EXCERPT_BYTES of it, so no answer can fill our memory.
                    async with client.stream(
                        "POST",
                        target.pinned_url(address),
                        content=body,
                        headers=headers,
                        extensions=extensions,
                    ) as response:
                        answer.status = response.status_code
                        answer.retry_after = response.headers.get("retry-after")
                        if not 200 <= response.status_code < 300:
                            await answer.read_excerpt(response)
                except httpx.ConnectError as exc:
                    why = redact_urls(str(exc))  # an error may quote the URL: its path is secret
                    outcome = Outcome("retry", f"cannot connect to {address}: {why}")
                    continue
                except httpx.TimeoutException:
                    outcome = answer.outcome() if answer.status else self._no_answer()
                except httpx.HTTPError as exc:
                    error = Outcome("retry", f"{type(exc).__name__}: {redact_urls(str(exc))}")
                    outcome = answer.outcome() if answer.status else error
                else:
                    outcome = answer.outcome()
                break
        return outcome

    def _no_answer(self) -> Outcome:
        return Outcome("retry", f"no answer within {self.timeout_s:g} s")


@dataclass(slots=True)
class Answer:
    """What the receiver answered, filled in as it arrives (a timeout keeps what came)."""

    status: int = 0
    retry_after: str | None = None
    excerpt: bytearray = field(default_factory=bytearray)
    secret_path: str = ""
    """The callback URL's path: masked if the receiver echoes it (it is the secret)."""

    async def read_excerpt(self, response: httpx.Response) -> None:
        """Keep the first ``EXCERPT_BYTES`` of the body (for the error), then stop reading."""
        async for chunk in response.aiter_raw():
            self.excerpt += chunk[: EXCERPT_BYTES - len(self.excerpt)]
            if len(self.excerpt) >= EXCERPT_BYTES:
                return

    def outcome(self) -> Outcome:
        """The verdict on this answer."""
        excerpt = bytes(self.excerpt)
        path, _, query = self.secret_path.partition("?")
        # Longest first: masking the bare path first would leave an echoed "?query" behind.
        for secret in (self.secret_path, path, query):
            if secret not in {"", "/"}:
                excerpt = excerpt.replace(secret.encode(), b"/***")
        return classify(self.status, self.retry_after, excerpt)


def encode_record(fields: dict[str, str]) -> bytes:
    """The job record JSON of a callback entry (the snapshot taken with the outcome)."""
    snapshot = msgspec.json.decode(fields["record"], type=dict[str, str])
    return msgspec.json.encode(record_from_hash(snapshot))


def classify(status: int, retry_after: str | None, excerpt: bytes = b"") -> Outcome:
    """What the receiver's answer means for this callback (``excerpt``: the body's start)."""
    if 200 <= status < 300:
        return Outcome("delivered", f"answered {status}")
    said = " ".join(excerpt.decode("utf-8", "replace").split())[:EXCERPT_CHARS]
    detail = f"answered {status}" + (f": {said}" if said else "")
    if status in RETRYABLE_STATUSES or status >= 500:
        seconds = None
        if retry_after and retry_after.strip().isdigit():
            seconds = float(retry_after.strip())
        return Outcome("retry", detail, retry_after_s=seconds)
    return Outcome("give_up", detail)


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
        self.queue = ReportQueue(
            connect(settings.redis_url, block_ms=settings.block_ms), self.keys, name
        )
        self.lease = LeaseKeeper(self.queue, lease_s=settings.lease_s)
        self.sender = Sender(
            CallbackPolicy.from_settings(settings),
            settings.webhook_secret,
            settings.callback_timeout_s,
        )
        self.stopping = stopping or threading.Event()
        self._settle = self.queue.client.register_script(CALLBACK_SETTLE_LUA)
        self._promote = self.queue.client.register_script(CALLBACK_PROMOTE_LUA)
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
            cursor, entry, _deleted = self.queue.reclaim(self._claim_cursor, self.settings.lease_ms)
            self._claim_cursor = cursor
            if entry is not None:
                log.info("callback.reclaimed", entry_id=entry.entry_id, deliveries=entry.deliveries)
                self.handle(entry)
                return
        # Wake up in time for retries that fall due while we wait for new entries.
        block_ms = min(self.settings.block_ms, max(10, self._ms_to_next_due()))
        entry = self.queue.read_new(block_ms)
        if entry is not None:
            self.handle(entry)

    def promote_due(self) -> int:
        """Move callbacks whose back-off is over from the delayed set to the stream."""
        keys = [self.keys.delayed, self.keys.stream]
        return int(self.queue.call(lambda: self._promote(keys=keys, args=[PROMOTE_BATCH])))

    def _ms_to_next_due(self) -> int:
        first = self.queue.call(
            lambda: self.queue.client.zrange(self.keys.delayed, 0, 0, withscores=True)
        )
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
            self.lease.hold(entry.entry_id, job_id)
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
                delay_s = self._backoff_s(attempt, outcome.retry_after_s)
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
        items = flatten(item) if mode != "done" else []
        keys = [self.keys.stream, self.keys.delayed, self.keys.dead]
        args: list[str | int] = [
            self.keys.group,
            self.name,
            entry.entry_id,
            mode,
            int(delay_s * 1000),
            len(items),
            *items,
        ]
        settled = self.queue.call(lambda: self._settle(keys=keys, args=args))
        if not settled:
            log.warning("callback.lease_lost", entry_id=entry.entry_id, mode=mode)

    def _backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Exponential back-off with jitter, at least what the receiver asked for (capped)."""
        base, cap = self.settings.callback_retry_base_s, self.settings.callback_retry_max_s
        delay = random.uniform(0.5, 1.0) * min(cap, base * 2.0 ** (attempt - 1))
        return min(cap, max(delay, retry_after_s or 0.0))


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
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        print(f"agentlink callbacks: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    from agentlink.observe.logging import configure_logging

    configure_logging(settings.log_format, settings.log_level, secrets=settings.secrets)
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
