"""The dashboard's routes under ``/dashboard``, and what every one of them shares: the
sign-in guard, the CSRF check of every POST, the HTML error pages, the static files.

``dashboard_router()`` is what ``agentlink.api.create_app`` registers; the pages are in
``pages``, the actions and their confirmation steps in ``forms``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from agentlink.api.auth import failures_wait_s, too_many_failures
from agentlink.api.errors import exception_to_response
from agentlink.api.store import JobStore
from agentlink.dashboard import forms, pages
from agentlink.dashboard.context import BASE, PUBLIC, context, settings_of
from agentlink.dashboard.render import html
from agentlink.dashboard.session import csrf_ok, enabled, session_from, signed_out


class SignInRequiredError(NotAuthorizedException):
    """No valid session: pages redirect to the sign-in form, the rest answers 401."""


async def require_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the request's ``Session`` in ``connection.state.session``. A wrong Bearer key
    counts as a failed authentication, like one sent to the API (429 past the limit)."""
    settings = settings_of(connection)
    store: JobStore = connection.app.state.store
    session = session_from(connection, settings)
    if session is not None and await signed_out(store, session):
        session = None
    if session is None and connection.headers.get("authorization") and enabled(settings):
        wait_s = await failures_wait_s(connection, settings, store, count=True)
        if wait_s is not None:
            raise too_many_failures(wait_s)
    connection.state.session = session
    if session is None and not handler.opt.get(PUBLIC):
        raise SignInRequiredError("sign in to the dashboard first")


async def check_csrf(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Before every POST but the sign-in (which checks its own token): the form must carry
    the session's CSRF token; 403 otherwise."""
    if request.method != "POST" or request.route_handler.opt.get(PUBLIC):
        return None
    form = await request.form()
    if csrf_ok(settings_of(request), request.state.session, str(form.get("csrf", ""))):
        return None
    return html(
        "error.html",
        status_code=403,
        **context(request, title="Refused", back=BASE),
        detail="This form did not come from the dashboard (its CSRF token is missing or "
        "wrong, or the sign-in changed): nothing was done. Reload the page and try again.",
    )


def dashboard_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors as pages: to the sign-in form without a session, else the status and the
    message the API's one error mapping gives (``agentlink.api.errors``)."""
    if isinstance(exc, SignInRequiredError):
        if request.method == "GET" and "part" not in request.query_params:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return Redirect(f"{BASE}/login?next={quote(wanted, safe='')}", status_code=303)
        return html(
            "error.html",
            status_code=401,
            **context(request, title="Sign in first", back=f"{BASE}/login"),
            detail="Sign in to the dashboard (or send an operator key as a Bearer token).",
        )
    answer = exception_to_response(request, exc)
    body: dict[str, Any] = answer.content if isinstance(answer.content, dict) else {}
    response = html(
        "error.html",
        status_code=answer.status_code or 500,
        **context(request, title=str(body.get("title", "Error"))),
        detail=str(body.get("detail", "")),
    )
    response.headers.update({k: v for k, v in answer.headers.items() if k == "Retry-After"})
    return response


def _static_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath("static")))


def dashboard_router() -> list[Router]:
    """The dashboard's pages and actions (signed in), and its static files (public)."""
    return [
        Router(
            path=BASE,
            route_handlers=[*pages.HANDLERS, *forms.HANDLERS],
            guards=[require_session],
            before_request=check_csrf,
            exception_handlers={Exception: dashboard_error},
            include_in_schema=False,
        ),
        create_static_files_router(
            path=f"{BASE}/static",
            directories=[_static_dir()],
            name="dashboard_static",
            cache_control=CacheControlHeader(max_age=300),
            include_in_schema=False,
        ),
    ]
