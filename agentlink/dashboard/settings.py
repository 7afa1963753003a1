"""The dashboard's settings (``AGENTLINK_DASHBOARD_*``), a group of the settings table.

Who may sign in is decided by ``AGENTLINK_OPERATOR_KEYS`` and
``AGENTLINK_DASHBOARD_PASSWORD``: with neither set, nobody can, so the dashboard is never
open by accident. Sessions are signed with ``AGENTLINK_DASHBOARD_SECRET``, or without it
with a key derived from the password and the operator keys: every API process derives the
same one (so a session works whichever answers), and changing either signs everybody out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from agentlink.env import choice, integer, number, read, text

CookieSecure = Literal["auto", "always", "never"]


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """How the dashboard signs people in and how often it refreshes."""

    password: str = text(
        "AGENTLINK_DASHBOARD_PASSWORD",
        "",
        "a password that signs in to the dashboard (none: operator keys only)",
        secret=True,
    )
    session_secret: str = text(
        "AGENTLINK_DASHBOARD_SECRET",
        "",
        "the key that signs dashboard sessions (none: derived from the password and keys)",
        secret=True,
    )
    session_s: int = integer(
        "AGENTLINK_DASHBOARD_SESSION_S", 8 * 3600, "how long a dashboard sign-in lasts", minimum=60
    )
    cookie_secure: CookieSecure = choice(
        "AGENTLINK_DASHBOARD_COOKIE_SECURE",
        "auto",
        ("auto", "always", "never"),
        "the session cookie's Secure flag; auto: when the request came over https",
    )
    refresh_s: float = number(
        "AGENTLINK_DASHBOARD_REFRESH_S",
        3.0,
        "how often an open dashboard page refreshes its parts",
        minimum=1.0,
    )


def dashboard_from_env(env: Mapping[str, str]) -> DashboardSettings:
    """The dashboard's settings as ``env`` sets them."""
    return read(DashboardSettings, env)
