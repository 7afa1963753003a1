"""Backpressure: per-caller rate limits, and refusing work the queue cannot take in time.

- **Rate limit** (``AGENTLINK_RATE_LIMIT`` requests per ``AGENTLINK_RATE_LIMIT_WINDOW_S``
  per API key, or per client address without keys): GCRA in one Lua script on Redis's
  clock, so every API process shares one budget per caller; over it → 429 + Retry-After.
- **Capacity**: a new job whose estimated wait passes ``AGENTLINK_MAX_WAIT_S``, or Redis
  memory above ``AGENTLINK_REDIS_MEMORY_HIGH_WATER`` of ``maxmemory`` → 503 + Retry-After,
  before anything is queued. Redis refusing writes (OOM, noeviction) is a 503 as well.

The wait estimate is one small function (``estimate_wait_s``) over ``Backlog``; swap it
for a better model without touching the routes.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from agentlink.api.auth import presented_key
from agentlink.api.errors import ApiError
from agentlink.api.store import Backlog, JobStore
from agentlink.settings import Settings

DEFAULT_SERVICE_S = 5.0
"""Service time assumed until the first job completes (a typical report takes 1 to 5 s)."""
MEMORY_RETRY_AFTER_S = 60
MAX_RETRY_AFTER_S = 600


def caller_scope(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """Who is calling, for rate limits: a digest of the API key (never the key itself), or
    the client address when the API runs without keys."""
    if settings.api_keys:
        digest = hashlib.sha256(presented_key(connection).encode()).hexdigest()[:16]
        return f"key-{digest}"
    client = connection.client.host if connection.client else "unknown"
    return f"ip-{client}"


def tenant_scope(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """Whose idempotency keys these are: per API key, so tenants never collide. Without API
    keys there are no tenants (and Make's address changes between retries): one scope."""
    if settings.api_keys:
        return caller_scope(connection, settings)
    return "open"


async def rate_limit(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard (after ``require_api_key``): 429 + Retry-After over the caller's budget."""
    settings: Settings = connection.app.state.settings
    if settings.rate_limit <= 0:
        return
    store: JobStore = connection.app.state.store
    decision = await store.rate_limit(
        caller_scope(connection, settings), settings.rate_limit, settings.rate_limit_window_s
    )
    if not decision.allowed:
        retry_after = max(1, math.ceil(decision.retry_after_s))
        raise ApiError(
            429,
            f"rate limit of {settings.rate_limit} requests per "
            f"{settings.rate_limit_window_s:g} s exceeded for this API key; retry in "
            f"{retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def estimate_wait_s(ahead: int, service_s: float | None, consumers: int) -> int:
    """Seconds until a consumer is expected to start a job with ``ahead`` entries before it:
    the entries ahead times the mean service time, shared by the live consumers (at least
    one is assumed: jobs wait for a worker to come back, they are not lost)."""
    if ahead <= 0:
        return 0
    return math.ceil(ahead * (service_s or DEFAULT_SERVICE_S) / max(1, consumers))


async def check_capacity(store: JobStore, settings: Settings) -> Backlog:
    """503 + Retry-After when Redis memory is past the high-water mark or a new job would
    wait longer than ``AGENTLINK_MAX_WAIT_S``; otherwise the backlog, for the answer."""
    memory = await store.memory()
    fraction = memory.fraction
    if fraction is not None and fraction >= settings.redis_memory_high_water:
        raise ApiError(
            503,
            f"the job queue is nearly full (Redis memory at {fraction:.0%} of maxmemory, "
            f"limit {settings.redis_memory_high_water:.0%}); new jobs are refused until "
            "the workers drain it — retry later",
            headers={"Retry-After": str(MEMORY_RETRY_AFTER_S)},
        )
    backlog = await store.backlog(live_within_s=2 * settings.lease_s)
    if settings.max_wait_s > 0:
        wait_s = estimate_wait_s(backlog.ahead, backlog.service_s, backlog.consumers)
        if wait_s > settings.max_wait_s:
            retry_after = min(MAX_RETRY_AFTER_S, max(5, math.ceil(wait_s - settings.max_wait_s)))
            raise ApiError(
                503,
                f"the queue is too long: a new job would wait about {wait_s} s "
                f"({backlog.ahead} jobs ahead, {max(1, backlog.consumers)} workers), more "
                f"than the {settings.max_wait_s:g} s allowed (AGENTLINK_MAX_WAIT_S); "
                f"retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
    return backlog
