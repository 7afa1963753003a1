"""Delivering one callback: the signed POST of a finished job's record to its URL.

The URL is checked again at delivery (the SSRF guard of ``agentlink.callbacks``: the host
must still be allowed and resolve to public addresses only) and the connection is pinned
to the address that passed. A delivery never takes longer than
``AGENTLINK_CALLBACK_TIMEOUT_S`` in all (resolving, connecting, sending, answer), and the
receiver's body is streamed: a 2xx is not read at all, an error's first 2 KiB are kept
for the message — a receiver cannot make a worker hold a huge or endless answer in memory.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Literal

import httpx
import msgspec

from agentlink.callbacks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackDnsError,
    CallbackPolicy,
    CallbackTarget,
    CallbackUrlError,
    sign,
)
from agentlink.jobs import record_from_hash
from agentlink.observe.redaction import redact_urls

USER_AGENT = "AgentLink-Callback/1"
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
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
