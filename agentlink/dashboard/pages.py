"""The dashboard's pages: the overview (queue, workers, charts, jobs), a job, the dead
letters, the dead callbacks, and signing in and out.

A page asked for with ``?part=<name>`` answers only that part (``render``): what the page's
script fetches every few seconds to refresh it without a reload.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import File, Redirect

from agentlink.api.auth import client_address
from agentlink.api.errors import ApiError
from agentlink.api.routes.jobs import pdf_answer
from agentlink.api.store import JobStore
from agentlink.api.submission import Limited
from agentlink.dashboard import reads
from agentlink.dashboard.context import BASE, PUBLIC, context, settings_of
from agentlink.dashboard.history import read_history
from agentlink.dashboard.jobs_query import JobQuery, list_jobs
from agentlink.dashboard.render import html
from agentlink.dashboard.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    check_secret,
    cookie_secure,
    enabled,
    expired_cookie,
    login_form_cookie,
    login_token_ok,
    new_session_cookie,
)
from agentlink.errors import JobNotFoundError
from agentlink.jobs import Status
from agentlink.storage.local import LocalStorage

Part = Annotated[str, QueryParameter(description="a part of the page alone", required=False)]
Text = Annotated[str, QueryParameter(required=False)]
Start = Annotated[int, QueryParameter(ge=0, required=False)]
AUTH_FAILURE_WINDOW_S = 60.0


def _part(name: str, template: str, allowed: dict[str, str]) -> str:
    """The template to render: the whole page, or one of its parts."""
    if not name:
        return template
    if name not in allowed:
        raise ApiError(404, f"this page has no part {name!r}")
    return allowed[name]


@get("/", name="dashboard")
async def overview(
    request: Request[Any, Any, Any],
    store: NamedDependency[JobStore],
    *,
    part: Part = "",
    status: Text = "",
    q: Text = "",
    start: Start = 0,
) -> Response[Any]:
    """The queue, the workers, the charts and the job list (filtered, searched, paged)."""
    template = _part(
        part,
        "overview.html",
        {"queue": "_queue.html", "charts": "_charts.html", "jobs": "_jobs.html"},
    )
    if status and status not in {s.value for s in Status}:
        raise ApiError(400, f"no status {status!r}: one of {', '.join(s.value for s in Status)}")
    query = JobQuery(status=status, q=q.strip()[:80], start=start)
    reading: dict[str, Awaitable[Any]] = {}
    if part in {"", "queue"}:
        reading["overview"] = reads.overview(store, settings_of(request))
    if part in {"", "charts"}:
        reading["charts"] = read_history(store)
    if part in {"", "jobs"}:
        reading["page"] = list_jobs(store, query)
    values = dict(zip(reading, await asyncio.gather(*reading.values()), strict=True))
    statuses = [s.value for s in Status]
    return html(
        template, **context(request, nav="overview", query=query, statuses=statuses, **values)
    )


@get("/jobs/{job_id:str}", name="dashboard_job")
async def job_page(
    job_id: FromPath[str],
    request: Request[Any, Any, Any],
    store: NamedDependency[JobStore],
    part: Part = "",
) -> Response[Any]:
    """One job: its record, timeline, errors, PDF link and actions. A unique prefix of at
    least 8 characters (what inspect and the PDF file names show) leads to the job."""
    template = _part(part, "job.html", {"job": "_job.html"})
    try:
        view = await reads.read_job(store, job_id)
    except JobNotFoundError:
        found = await reads.ids_starting(store, job_id) if len(job_id) >= 8 else []
        if len(found) != 1:
            raise
        return Redirect(f"{BASE}/jobs/{found[0]}", status_code=303)
    return html(template, **context(request, nav="overview", view=view))


@get("/jobs/{job_id:str}/pdf", name="dashboard_pdf", media_type="application/pdf")
async def job_pdf(
    job_id: FromPath[str], store: NamedDependency[JobStore], state: State
) -> File | Redirect:
    """The job's PDF, as the API serves it (a file here, or a redirect to Dropbox)."""
    view = await reads.read_job(store, job_id)
    local: LocalStorage = state.local_storage
    return pdf_answer(job_id, view.record, local)


@get("/dead", name="dashboard_dead")
async def dead_page(
    request: Request[Any, Any, Any],
    store: NamedDependency[JobStore],
    part: Part = "",
    before: Text = "",
    after: Text = "",
) -> Response[Any]:
    """The dead letters with their error history, newest first, a page at a time."""
    template = _part(part, "dead.html", {"dead": "_dead.html"})
    page = await reads.dead_letters(store, before=before, after=after)
    return html(template, **context(request, nav="dead", page=page))


@get("/callbacks", name="dashboard_callbacks")
async def callbacks_page(
    request: Request[Any, Any, Any],
    store: NamedDependency[JobStore],
    part: Part = "",
    before: Text = "",
    after: Text = "",
) -> Response[Any]:
    """The callbacks given up on, newest first, a page at a time."""
    template = _part(part, "callbacks.html", {"callbacks": "_callbacks.html"})
    page = await reads.dead_callbacks(store, before=before, after=after)
    return html(template, **context(request, nav="callbacks", page=page))


def _next(wanted: str) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    if wanted.startswith(BASE) and not wanted.startswith("//") and "\\" not in wanted:
        return wanted
    return BASE


def _login_page(
    request: Request[Any, Any, Any], wanted: str, problem: str = "", status_code: int = 200
) -> Response[Any]:
    settings = settings_of(request)
    secure = cookie_secure(request, settings)
    cookie, token = login_form_cookie(settings, secure=secure)
    response = html(
        "login.html",
        status_code=status_code,
        **context(
            request,
            enabled=enabled(settings),
            login_token=token,
            next=_next(wanted),
            problem=problem,
            session_h=f"{settings.dashboard.session_s / 3600:g}",
        ),
    )
    response.set_cookie(cookie)
    return response


@get("/login", name="dashboard_login", opt={PUBLIC: True})
async def login_form(request: Request[Any, Any, Any]) -> Response[Any]:
    """The sign-in form (straight on to the dashboard when signed in already)."""
    wanted = request.query_params.get("next", "")
    if request.state.session is not None:
        return Redirect(_next(wanted), status_code=303)
    return _login_page(request, wanted)


@post("/login", name="dashboard_sign_in", opt={PUBLIC: True}, status_code=303)
async def sign_in(
    request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """Check the key or password; set the session cookie and go on, or show the form again.
    Failures count against the address like the API's (``AGENTLINK_AUTH_FAILURE_LIMIT``)."""
    settings = settings_of(request)
    form = await request.form()
    wanted = str(form.get("next", ""))
    if not login_token_ok(request, settings, str(form.get("csrf", ""))):
        return _login_page(request, wanted, "The form expired: sign in again.", 403)
    who = check_secret(settings, str(form.get("secret", "")))
    if who is None:
        if settings.auth_failure_limit > 0:
            bucket = store.keys.rate(f"authfail-{client_address(request)}")
            limited = await store.count(bucket, settings.auth_failure_limit, AUTH_FAILURE_WINDOW_S)
            if isinstance(limited, Limited):
                wait_s = max(1, math.ceil(limited.retry_after_s))
                problem = f"Too many failed sign-ins from this address: wait {wait_s} s."
                return _login_page(request, wanted, problem, 429)
        return _login_page(
            request, wanted, "That is neither an operator key nor the password.", 401
        )
    secure = cookie_secure(request, settings)
    response: Response[Any] = Redirect(_next(wanted), status_code=303)
    response.set_cookie(new_session_cookie(settings, who, secure=secure))
    response.set_cookie(expired_cookie(LOGIN_COOKIE, secure=secure))
    return response


@post("/logout", name="dashboard_sign_out", status_code=303)
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    """Forget the session cookie."""
    response: Response[Any] = Redirect(f"{BASE}/login", status_code=303)
    response.set_cookie(
        expired_cookie(SESSION_COOKIE, secure=cookie_secure(request, settings_of(request)))
    )
    return response


HANDLERS = [overview, job_page, job_pdf, dead_page, callbacks_page, login_form, sign_in, sign_out]
