"""Who is calling: API keys, operator keys, and the caller's scopes.

With ``AGENTLINK_API_KEYS`` (or ``AGENTLINK_OPERATOR_KEYS``) set, every ``/api/*`` request
must carry a key, as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in
constant time against every configured key. Keys are never logged: a caller is known by a
digest of its key.

- A job belongs to the key that created it; other keys get 404 for it. Operator keys
  (``AGENTLINK_OPERATOR_KEYS``, valid API keys too) see every job.
- Failed authentications are counted per client address (``AGENTLINK_AUTH_FAILURE_LIMIT``
  per minute); past that, the address gets 429 + Retry-After instead of 401. A valid key
  always gets through: keys are long random strings, so locking an address out would add
  no protection, yet would let one misconfigured scenario behind a shared egress address
  (Make's) lock out every other caller there.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection

from agentlink.api.errors import ApiError
from agentlink.api.store import JobStore
from agentlink.api.submission import Limited
from agentlink.settings import Settings

AUTH_FAILURE_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of one request, as the routes and the scripts need it."""

    rate_scope: str
    """Whose rate-limit budget this request spends: ``key-<digest>`` or ``ip-<address>``."""
    tenant: str
    """Whose jobs and idempotency keys these are: ``key-<digest>``, or ``open`` without keys."""
    operator: bool
    """True for operator keys, and for every caller when the API runs without keys."""

    @property
    def owner_filter(self) -> str:
        """The owner a job must have for this caller to see it (``""``: any)."""
        return "" if self.operator else self.tenant


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The key a request carries (empty if none)."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.headers.get("x-api-key", "").strip()


def key_matches(presented: str, keys: tuple[str, ...]) -> bool:
    """True if ``presented`` equals one of ``keys``; every key is compared, in constant time."""
    given = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address (the proxy's ``X-Forwarded-For`` only from trusted proxies:
    uvicorn's ``forwarded_allow_ips``)."""
    return connection.client.host if connection.client else "unknown"


def key_digest(key: str) -> str:
    """How a key is named in Redis keys and records: never the key itself."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def identify(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> Caller | None:
    """The caller, or None when keys are required and the request has no valid one."""
    if not settings.auth_required:
        return Caller(rate_scope=f"ip-{client_address(connection)}", tenant="open", operator=True)
    presented = presented_key(connection)
    if not presented:
        return None
    operator = key_matches(presented, settings.operator_keys)
    if not operator and not key_matches(presented, settings.api_keys):
        return None
    digest = key_digest(presented)
    return Caller(rate_scope=digest, tenant=digest, operator=operator)


async def failures_wait_s(
    connection: ASGIConnection[Any, Any, Any, Any],
    settings: Settings,
    store: JobStore,
    *,
    count: bool,
) -> int | None:
    """Seconds the client's address must wait, having failed to authenticate too often
    (``AGENTLINK_AUTH_FAILURE_LIMIT`` per minute); None while it may still try. With
    ``count`` this request is one more failure; without, nothing is counted."""
    if settings.auth_failure_limit <= 0:
        return None
    bucket = store.keys.rate(f"authfail-{client_address(connection)}")
    limited = await store.count(
        bucket, settings.auth_failure_limit, AUTH_FAILURE_WINDOW_S, peek=not count
    )
    if isinstance(limited, Limited):
        return max(1, math.ceil(limited.retry_after_s))
    return None


def too_many_failures(wait_s: int) -> ApiError:
    """The 429 of an address past its failed-authentication budget."""
    return ApiError(
        429,
        f"too many failed authentications from this address; retry in {wait_s} s "
        "with a valid API key",
        headers={"Retry-After": str(wait_s)},
    )


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """The ``before_request`` hook of every ``/api/*`` route: the request's ``Caller`` in
    ``connection.state.caller``; 401 without a valid key (429 once the address has failed
    too often). It runs before the body is read. A hook rather than a Litestar guard: a
    guard call copies the route handler object on every request, ~7 % of a POST's CPU."""
    settings: Settings = connection.app.state.settings
    caller = identify(connection, settings)
    if caller is not None:
        connection.state.caller = caller
        return
    wait_s = await failures_wait_s(connection, settings, connection.app.state.store, count=True)
    if wait_s is not None:
        raise too_many_failures(wait_s)
    raise ApiError(
        401,
        "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        headers={"WWW-Authenticate": 'Bearer realm="agentlink"'},
    )
