"""``agentlink api``: serve the HTTP API, refusing to open it to others without API keys."""

from __future__ import annotations

import ipaddress
import sys

from agentlink.settings import Settings

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback(host: str) -> bool:
    """True when ``host`` is an address (or name) only this machine can reach."""
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_api(settings: Settings, host: str, port: int, *, allow_no_auth: bool = False) -> int:
    """Serve the API on ``host:port`` until stopped; exit 2 at once if that would open it
    without API keys to anyone but this machine (unless allowed)."""
    import structlog

    from agentlink.api.server import serve
    from agentlink.observe.logging import configure_logging

    opened = allow_no_auth or settings.allow_no_auth
    if not settings.auth_required and not is_loopback(host) and not opened:
        print(
            f"agentlink: refusing to serve {host} without API keys: anyone who can reach it "
            "could queue reports. Set AGENTLINK_API_KEYS, bind 127.0.0.1, or accept an open "
            "API with --allow-no-auth (AGENTLINK_ALLOW_NO_AUTH=true).",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_format, settings.log_level, secrets=settings.secrets)
    if not settings.auth_required:
        structlog.get_logger(__name__).warning(
            "api.no_api_keys",
            host=host,
            exposed=not is_loopback(host),
            hint="set AGENTLINK_API_KEYS before exposing the API",
        )
    serve(settings, host, port)
    return 0
