"""Backpressure: per-caller rate limits, and refusing work the queue cannot take in time.

- **Rate limit** (``AGENTLINK_RATE_LIMIT`` requests per ``AGENTLINK_RATE_LIMIT_WINDOW_S``
  per API key, or per client address without keys): GCRA on Redis's clock, inside the
  same script that takes or reads the job, so every API process shares one budget per
  caller and no request pays an extra round trip; over it → 429 + Retry-After.
- **Capacity**: a new job whose estimated wait passes ``AGENTLINK_MAX_WAIT_S``, or Redis
  memory above ``AGENTLINK_REDIS_MEMORY_HIGH_WATER`` of ``maxmemory`` → 503 + Retry-After,
  before anything is queued. Redis refusing writes (OOM, noeviction) is a 503 as well.

The wait estimate is one small function (``estimate_wait_s``); the submit script applies
its inverse (``max_ahead``), so the rule is written once.
"""

from __future__ import annotations

import math

from agentlink.api.auth import Caller
from agentlink.api.errors import ApiError
from agentlink.api.submission import Conditions, RateLimit
from agentlink.settings import Settings
from agentlink.stream.keys import Keys

DEFAULT_SERVICE_S = 5.0
"""Service time assumed until the first job completes (a typical report takes 1 to 5 s)."""
MEMORY_RETRY_AFTER_S = 60
MAX_RETRY_AFTER_S = 600


def estimate_wait_s(ahead: int, service_s: float | None, consumers: int) -> int:
    """Seconds until a consumer is expected to start a job with ``ahead`` entries before it:
    the entries ahead times the mean service time, shared by the live consumers (at least
    one is assumed: jobs wait for a worker to come back, they are not lost)."""
    if ahead <= 0:
        return 0
    return math.ceil(ahead * (service_s or DEFAULT_SERVICE_S) / max(1, consumers))


def max_ahead(settings: Settings, conditions: Conditions) -> int:
    """The most entries a new job may find ahead of it without waiting longer than
    ``AGENTLINK_MAX_WAIT_S`` by ``estimate_wait_s`` (-1: no limit)."""
    if settings.max_wait_s <= 0:
        return -1
    service_s = conditions.service_s or DEFAULT_SERVICE_S
    return math.floor(settings.max_wait_s * max(1, conditions.consumers) / service_s)


def check_memory(settings: Settings, conditions: Conditions) -> None:
    """503 + Retry-After when Redis memory is past the high-water mark."""
    fraction = conditions.memory_fraction
    if fraction is not None and fraction >= settings.redis_memory_high_water:
        raise ApiError(
            503,
            f"the job queue is nearly full (Redis memory at {fraction:.0%} of maxmemory, "
            f"limit {settings.redis_memory_high_water:.0%}); new jobs are refused until "
            "the workers drain it — retry later",
            headers={"Retry-After": str(MEMORY_RETRY_AFTER_S)},
        )


def queue_full(settings: Settings, conditions: Conditions, ahead: int) -> ApiError:
    """503 + Retry-After: a new job would wait longer than ``AGENTLINK_MAX_WAIT_S``."""
    wait_s = estimate_wait_s(ahead, conditions.service_s, conditions.consumers)
    retry_after = min(MAX_RETRY_AFTER_S, max(5, math.ceil(wait_s - settings.max_wait_s)))
    return ApiError(
        503,
        f"the queue is too long: a new job would wait about {wait_s} s "
        f"({ahead} jobs ahead, {max(1, conditions.consumers)} workers), more "
        f"than the {settings.max_wait_s:g} s allowed (AGENTLINK_MAX_WAIT_S); "
        f"retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def rate_limited(settings: Settings, retry_after_s: float) -> ApiError:
    """429 + Retry-After: the caller spent its budget (its API key's, or without keys its
    address's: ``auth.identify``)."""
    retry_after = max(1, math.ceil(retry_after_s))
    whose = "this API key" if settings.auth_required else "this client address"
    return ApiError(
        429,
        f"rate limit of {settings.rate_limit} requests per "
        f"{settings.rate_limit_window_s:g} s exceeded for {whose}; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def caller_rate(keys: Keys, settings: Settings, caller: Caller) -> RateLimit:
    """The rate limit the caller's requests count against (its key, or its address)."""
    return RateLimit(
        redis_key=keys.rate(caller.rate_scope),
        limit=settings.rate_limit,
        window_s=settings.rate_limit_window_s,
    )
