"""What every dashboard page shares: where it lives, the settings, and the values every
template needs (``context``)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection

from agentlink.dashboard.session import csrf_token
from agentlink.settings import Settings

BASE = "/dashboard"
PUBLIC = "dashboard_public"
"""Route option: reachable without a session (the sign-in form)."""
_FLASH = {
    "cancelled": "Cancelled: the job was queued and will never be made.",
    "requested": "Cancel requested: its worker stops the render within a few seconds.",
    "finished": "Nothing to cancel: the job had finished already.",
    "rerun": "Queued again as this new job.",
    "replayed": "Dead letter queued again.",
    "replayed-all": "Every readable dead letter was queued again.",
    "gone": "That dead letter is gone (replayed or purged meanwhile).",
    "sent": "Callback queued for delivery again.",
    "sent-all": "Every dead callback was queued for delivery again.",
}


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    """The API's settings."""
    settings: Settings = connection.app.state.settings
    return settings


def context(request: Request[Any, Any, Any], nav: str = "", **values: Any) -> dict[str, Any]:
    """What every template needs: the session, its CSRF token, the refresh interval, and
    the message of the action just done (``?done=``)."""
    settings = settings_of(request)
    session = getattr(request.state, "session", None)
    refresh_s = settings.dashboard.refresh_s
    return {
        "base": BASE,
        "nav": nav,
        "session": session,
        "csrf": csrf_token(settings, session) if session else "",
        "refresh_s": f"{refresh_s:g}",
        "refresh_ms": int(refresh_s * 1000),
        "flash": _FLASH.get(request.query_params.get("done", ""), ""),
        "back": "",
        **values,
    }
