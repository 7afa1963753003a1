"""What the API's request scripts take and answer: a submission with its rate limit and
idempotency key, the slow-changing conditions the front door decides with, and the
verdicts (accepted, an existing job, limited, full).

Kept apart from ``agentlink.api.store`` (which runs the scripts) so the routes, the limits
and the dashboard name these values without the Redis adapter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Accepted:
    """A job just queued: its ids and how many entries are ahead of it."""

    job_id: str
    entry_id: str
    ahead: int


@dataclass(frozen=True, slots=True)
class Existing:
    """An idempotency key already used: the job it created, that request's body hash, the
    job's status now (None if its record is gone) and the entries ahead of it."""

    job_id: str
    body_sha256: str
    status: str | None
    ahead: int


@dataclass(frozen=True, slots=True)
class Limited:
    """The caller is over its rate limit."""

    retry_after_s: float


@dataclass(frozen=True, slots=True)
class Full:
    """Backpressure: more entries are ahead than a new job may wait behind."""

    ahead: int


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """Where one idempotency key is recorded, and the hash of this request's body."""

    redis_key: str
    body_sha256: str
    ttl_s: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A caller's budget: ``limit`` requests per ``window_s`` in bucket ``redis_key``
    (``limit`` 0: no limit)."""

    redis_key: str
    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class Submission:
    """Everything the submit script needs for one request."""

    job_id: str
    created_at: str
    entry: dict[str, str]
    job: dict[str, str]
    rate: RateLimit
    idempotency: IdempotencyKey | None
    max_ahead: int
    """Refuse the job when more entries than this are ahead of it (-1: no limit)."""


@dataclass(frozen=True, slots=True)
class Conditions:
    """The slow-changing state the front door decides with, as of ``read_at`` (monotonic)."""

    service_s: float | None
    """Moving average of completed jobs' service time (None before the first)."""
    consumers: int
    """Consumers that sent a heartbeat within the last two leases."""
    memory_used_bytes: int
    memory_max_bytes: int
    read_at: float

    @property
    def memory_fraction(self) -> float | None:
        """Used / maxmemory; None when Redis has no maxmemory."""
        if not self.memory_max_bytes:
            return None
        return self.memory_used_bytes / self.memory_max_bytes
