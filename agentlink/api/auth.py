"""API keys: with ``AGENTLINK_API_KEYS`` set, every ``/api/*`` request must carry one.

Accepted as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; compared in constant
time against every configured key. Keys are never logged.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from agentlink.api.errors import ApiError


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


def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: 401 unless the request carries a configured key (no keys: open)."""
    keys: tuple[str, ...] = connection.app.state.settings.api_keys
    if not keys:
        return
    presented = presented_key(connection)
    if not presented or not key_matches(presented, keys):
        raise ApiError(
            401,
            "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="agentlink"'},
        )
