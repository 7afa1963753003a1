"""The dashboard's actions, each in two steps: a GET shows what will happen and a form
to confirm it; the POST of that form (with the session's CSRF token, checked before any
handler runs, and ``confirm=yes``) does it, then goes back to a page that shows the result.

A POST without ``confirm=yes`` only shows the confirmation step again. Each action is a
``ConfirmedAction`` (its path, what its step says, what it does); ``routes`` makes the GET
and the POST of every one the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect

from agentlink.api.errors import ApiError
from agentlink.api.store import JobStore
from agentlink.dashboard import actions, reads
from agentlink.dashboard.context import BASE, context, settings_of
from agentlink.dashboard.render import clock, html, short
from agentlink.errors import InvalidJobError
from agentlink.jobs import Status

AnyRequest = Request[Any, Any, Any]
Step = Callable[[AnyRequest, JobStore, str], Awaitable[Response[Any]]]
Act = Callable[[AnyRequest, JobStore, str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class ConfirmedAction:
    """One action of the dashboard, under ``BASE``."""

    path: str
    """With at most one path parameter: the job or dead letter acted on."""
    name: str
    step: Step
    """The confirmation page (what will happen, and the form that does it)."""
    act: Act
    """Do it; returns where to go next."""


def _confirm(request: AnyRequest, nav: str, **values: Any) -> Response[Any]:
    """The confirmation step: ``title``, ``lines``, ``button``, ``back``, ``possible``."""
    values.setdefault("possible", True)
    values.setdefault("danger", False)
    return html("confirm.html", **context(request, nav=nav, action=request.url.path, **values))


def _describe(view: reads.JobView) -> str:
    r = view.record
    return (
        f"Job {r.job_id}: the {r.kind.value} report for {r.suburb}, {r.state.value}, "
        f"created {clock(r.created_at)}, now {r.status.value}."
    )


# -- cancel, re-run ---------------------------------------------------------------------------


async def _cancel_step(request: AnyRequest, store: JobStore, job_id: str) -> Response[Any]:
    view = await reads.read_job(store, job_id)
    status = view.record.status
    back = f"{BASE}/jobs/{job_id}"
    if status.finished:
        return _confirm(
            request,
            "overview",
            title=f"Cancel job {short(job_id)}",
            lines=[_describe(view), "It has finished: there is nothing left to cancel."],
            back=back,
            possible=False,
        )
    effect = (
        "It is queued: it will be cancelled at once and never made."
        if status is Status.QUEUED
        else "It is being made: its worker stops the render at its next lease renewal "
        "(within a few seconds), stores nothing, and records it cancelled; a report "
        "rendered already is stored and the job completes."
    )
    return _confirm(
        request,
        "overview",
        title=f"Cancel job {short(job_id)}?",
        lines=[
            _describe(view),
            effect,
            "Its callback, if it has one, is sent with status cancelled.",
        ],
        button="Cancel the job",
        danger=True,
        back=back,
    )


async def _cancel(request: AnyRequest, store: JobStore, job_id: str) -> str:
    """Cancel the job (``lua/cancel.lua``); back to its page."""
    done = await actions.cancel(store, job_id, ttl_s=settings_of(request).job_ttl_s)
    if done.verdict == "missing":
        await reads.read_job(store, job_id)  # 404 page
    return f"{BASE}/jobs/{job_id}?done={done.verdict}"


async def _rerun_step(request: AnyRequest, store: JobStore, job_id: str) -> Response[Any]:
    view = await reads.read_job(store, job_id)
    back = f"{BASE}/jobs/{job_id}"
    if not view.record.status.finished:
        return _confirm(
            request,
            "overview",
            title=f"Re-run job {short(job_id)}",
            lines=[_describe(view), "It has not finished yet: only a finished job runs again."],
            back=back,
            possible=False,
        )
    return _confirm(
        request,
        "overview",
        title=f"Re-run job {short(job_id)}?",
        lines=[
            _describe(view),
            "The same request is queued as a new job, with a new id, owned by the same API "
            "key; this job stays as it is. Both timelines name the other job.",
        ],
        button="Queue it again",
        back=back,
    )


async def _rerun(_request: AnyRequest, store: JobStore, job_id: str) -> str:
    """Queue the job's request again as a new job; on to the new job's page."""
    try:
        new_id = await actions.rerun(store, job_id)
    except InvalidJobError as exc:
        raise ApiError(409, str(exc)) from exc
    return f"{BASE}/jobs/{new_id}?done=rerun"


# -- dead letters, dead callbacks ---------------------------------------------------------------


def _simple_step(nav: str, title: str, effect: str, button: str) -> Step:
    """A confirmation step that needs nothing read first (``{id}`` in ``title`` is the
    letter's id)."""

    async def step(request: AnyRequest, _store: JobStore, dead_id: str) -> Response[Any]:
        return _confirm(
            request,
            nav,
            title=title.format(id=dead_id),
            lines=[effect],
            button=button,
            back=f"{BASE}/{nav}",
        )

    return step


async def _replay(_request: AnyRequest, store: JobStore, dead_id: str) -> str:
    """Queue the dead letter's job again; back to the dead letters."""
    new_id = await actions.replay(store, dead_id)
    return f"{BASE}/dead?done={'replayed' if new_id else 'gone'}"


async def _replay_all(_request: AnyRequest, store: JobStore, _: str) -> str:
    """Queue every readable dead letter again; back to the dead letters."""
    await actions.replay_all(store)
    return f"{BASE}/dead?done=replayed-all"


async def _send_again(_request: AnyRequest, store: JobStore, dead_id: str) -> str:
    """Send the dead callback again; back to the dead callbacks."""
    new_id = await actions.replay_callback(store, dead_id)
    return f"{BASE}/callbacks?done={'sent' if new_id else 'gone'}"


async def _send_all_again(_request: AnyRequest, store: JobStore, _: str) -> str:
    """Send every dead callback again; back to the dead callbacks."""
    await actions.replay_all_callbacks(store)
    return f"{BASE}/callbacks?done=sent-all"


ACTIONS = [
    ConfirmedAction("/jobs/{job_id:str}/cancel", "dashboard_cancel", _cancel_step, _cancel),
    ConfirmedAction("/jobs/{job_id:str}/rerun", "dashboard_rerun", _rerun_step, _rerun),
    ConfirmedAction(
        "/dead/{dead_id:str}/replay",
        "dashboard_replay",
        _simple_step(
            "dead",
            "Replay dead letter {id}?",
            "Its job is queued again under the same job id; the dead letter is removed.",
            "Replay it",
        ),
        _replay,
    ),
    ConfirmedAction(
        "/dead/replay-all",
        "dashboard_replay_all",
        _simple_step(
            "dead",
            "Replay every dead letter?",
            "Every dead letter's job is queued again under its own job id, oldest first; "
            "letters no worker could ever read stay where they are.",
            "Replay them all",
        ),
        _replay_all,
    ),
    ConfirmedAction(
        "/callbacks/{dead_id:str}/replay",
        "dashboard_callback_replay",
        _simple_step(
            "callbacks",
            "Send callback {id} again?",
            "It goes back to the notifiers as a first attempt, with the same delivery id, "
            "so the receiver can tell it from a new one.",
            "Send it again",
        ),
        _send_again,
    ),
    ConfirmedAction(
        "/callbacks/replay-all",
        "dashboard_callbacks_all",
        _simple_step(
            "callbacks",
            "Send every dead callback again?",
            "Each goes back to the notifiers as a first attempt, with its own delivery id, "
            "oldest first. Fix what made the receivers refuse them first, or they come back.",
            "Send them all again",
        ),
        _send_all_again,
    ),
]


def _subject(request: AnyRequest) -> str:
    """The job or dead letter the request's path names ("" for an action on all)."""
    return str(next(iter(request.path_params.values()), ""))


def routes(action: ConfirmedAction) -> list[HTTPRouteHandler]:
    """The GET of ``action``'s confirmation step and the POST that does it."""

    async def show(request: AnyRequest, store: NamedDependency[JobStore]) -> Response[Any]:
        return await action.step(request, store, _subject(request))

    async def do(request: AnyRequest, store: NamedDependency[JobStore]) -> Response[Any]:
        form = await request.form()
        if form.get("confirm") != "yes":
            return await action.step(request, store, _subject(request))
        return Redirect(await action.act(request, store, _subject(request)), status_code=303)

    show.__doc__ = f"The confirmation step of {action.name}."
    do.__doc__ = action.act.__doc__
    return [
        get(action.path, name=f"{action.name}_step")(show),
        post(action.path, name=action.name, status_code=303)(do),
    ]


HANDLERS = [handler for action in ACTIONS for handler in routes(action)]
