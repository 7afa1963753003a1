"""Who may use the dashboard: signing in, the signed session cookie, and CSRF tokens.

- A person signs in with an operator key (``AGENTLINK_OPERATOR_KEYS``) or the dashboard
  password (``AGENTLINK_DASHBOARD_PASSWORD``). The session is a cookie holding its expiry,
  a random nonce and who signed in (the digest of the key, or ``password-`` and an HMAC of
  the password: never either itself), signed with HMAC-SHA256; it is HttpOnly,
  SameSite=Lax, limited to ``/dashboard``, and Secure when the request came over https
  (``AGENTLINK_DASHBOARD_COOKIE_SECURE``). A session whose key or password is no longer
  configured is refused, and so is one that signed out (its nonce is kept in Redis until
  the cookie would have expired).
- Every form that changes something carries a CSRF token derived from the session's nonce;
  a POST without it is refused (403). The sign-in form carries one too, tied to a short
  cookie of its own, so nobody can sign a browser in to another person's session.
- Scripts may send an operator key as ``Authorization: Bearer <key>`` instead: such a
  request carries no cookie a browser would add by itself, so it needs no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from agentlink.api.auth import key_digest, key_matches, presented_key
from agentlink.api.store import JobStore
from agentlink.settings import Settings

SESSION_COOKIE = "agentlink_dashboard"
LOGIN_COOKIE = "agentlink_dashboard_login"
COOKIE_PATH = "/dashboard"
LOGIN_FORM_S = 3600
"""How long a sign-in form stays good."""
SHARED_LOGIN_PREFIX = "password-"
"""How the name of a session opened with the dashboard password begins."""


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in operator, as one request presents it."""

    who: str
    """The digest of the operator key (``key-…``), or ``password-…`` (see ``password_who``)."""
    nonce: str
    """The session's random part; the CSRF token derives from it ("" for a Bearer key)."""
    bearer: bool = False
    """Signed in by an ``Authorization`` header (a script): no CSRF token needed."""
    expires: int = 0
    """When the cookie expires (Unix seconds; 0 for a Bearer key)."""


def now_s() -> float:
    """The clock sessions are judged by (a seam for tests)."""
    return time.time()


def signing_key(settings: Settings) -> bytes:
    """``AGENTLINK_DASHBOARD_SECRET``, or a key derived from the password and the operator
    keys (the same in every API process; changing them signs everybody out)."""
    dashboard = settings.dashboard
    if dashboard.session_secret:
        return hashlib.sha256(dashboard.session_secret.encode()).digest()
    material = "\0".join(
        ["agentlink dashboard", dashboard.password, *sorted(settings.operator_keys)]
    )
    return hashlib.sha256(material.encode()).digest()


def enabled(settings: Settings) -> bool:
    """Somebody can sign in: an operator key or the password is configured."""
    return bool(settings.operator_keys or settings.dashboard.password)


def _sign(settings: Settings, *parts: str) -> str:
    message = "|".join(parts).encode()
    return hmac.new(signing_key(settings), message, hashlib.sha256).hexdigest()


def password_who(settings: Settings) -> str:
    """Who a session opened with the current password is: changing the password (even with
    ``AGENTLINK_DASHBOARD_SECRET`` set) ends every such session."""
    return SHARED_LOGIN_PREFIX + _sign(settings, "password", settings.dashboard.password)[:16]


def check_secret(settings: Settings, given: str) -> str | None:
    """Who ``given`` signs in as (an operator key's digest, or ``password_who``); None if
    it is neither. Every candidate is compared, in constant time."""
    given = given.strip()
    if not given:
        return None
    if key_matches(given, settings.operator_keys):
        return key_digest(given)
    password = settings.dashboard.password
    if password and hmac.compare_digest(given.encode(), password.encode()):
        return password_who(settings)
    return None


def _still_valid(settings: Settings, who: str) -> bool:
    """The key or password a session was opened with is still configured."""
    if who.startswith(SHARED_LOGIN_PREFIX):
        password = settings.dashboard.password
        return bool(password) and hmac.compare_digest(who, password_who(settings))
    return any(key_digest(key) == who for key in settings.operator_keys)


def new_session_cookie(settings: Settings, who: str, *, secure: bool) -> Cookie:
    """The cookie of a session just opened for ``who``."""
    expires = str(int(now_s()) + settings.dashboard.session_s)
    nonce = secrets.token_urlsafe(18)
    value = ".".join([expires, nonce, who, _sign(settings, "session", expires, nonce, who)])
    return _cookie(SESSION_COOKIE, value, settings.dashboard.session_s, secure=secure)


def _cookie(name: str, value: str, max_age: int, *, secure: bool) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def expired_cookie(name: str, *, secure: bool) -> Cookie:
    """A cookie that removes ``name`` from the browser."""
    return _cookie(name, "", 0, secure=secure)


def session_from(
    connection: ASGIConnection[Any, Any, Any, Any], settings: Settings
) -> Session | None:
    """The request's session: an operator key as Bearer, else a valid session cookie."""
    if not enabled(settings):
        return None
    if connection.headers.get("authorization"):
        key = presented_key(connection)
        if key and key_matches(key, settings.operator_keys):
            return Session(who=key_digest(key), nonce="", bearer=True)
        return None
    return _cookie_session(connection.cookies.get(SESSION_COOKIE, ""), settings)


def _cookie_session(value: str, settings: Settings) -> Session | None:
    parts = value.split(".")
    if len(parts) != 4:
        return None
    expires, nonce, who, signature = parts
    expected = _sign(settings, "session", expires, nonce, who)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    if not expires.isdigit() or int(expires) < now_s() or not _still_valid(settings, who):
        return None
    return Session(who=who, nonce=nonce, expires=int(expires))


async def sign_out(store: JobStore, session: Session) -> None:
    """End ``session`` everywhere its cookie might still be, until the cookie expires."""
    if session.bearer:
        return
    ttl_s = max(1, session.expires - int(now_s()))
    key = store.keys.signed_out(session.nonce)
    await store.run(lambda: store.client.set(key, 1, ex=ttl_s))


async def signed_out(store: JobStore, session: Session) -> bool:
    """``session`` was signed out (a Bearer key never is)."""
    if session.bearer:
        return False
    key = store.keys.signed_out(session.nonce)
    return bool(await store.run(lambda: store.client.exists(key)))


def csrf_token(settings: Settings, session: Session) -> str:
    """The token every form of this session carries."""
    return _sign(settings, "csrf", session.nonce)


def csrf_ok(settings: Settings, session: Session, given: str) -> bool:
    """``given`` is this session's token (a Bearer request needs none)."""
    if session.bearer:
        return True
    return bool(given) and hmac.compare_digest(
        given.encode(), csrf_token(settings, session).encode()
    )


def login_form_cookie(settings: Settings, *, secure: bool) -> tuple[Cookie, str]:
    """The sign-in form's own cookie and the token its form carries."""
    nonce = secrets.token_urlsafe(18)
    return _cookie(LOGIN_COOKIE, nonce, LOGIN_FORM_S, secure=secure), _sign(
        settings, "login", nonce
    )


def login_token_ok(
    connection: ASGIConnection[Any, Any, Any, Any], settings: Settings, given: str
) -> bool:
    """``given`` is the token of the sign-in form this browser was shown."""
    nonce = connection.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not given:
        return False
    return hmac.compare_digest(given.encode(), _sign(settings, "login", nonce).encode())


def cookie_secure(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> bool:
    """Whether cookies get the Secure flag (``AGENTLINK_DASHBOARD_COOKIE_SECURE``)."""
    mode = settings.dashboard.cookie_secure
    if mode == "auto":
        return connection.url.scheme == "https"
    return mode == "always"
