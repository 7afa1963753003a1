"""The dashboard's actions, each in two steps: a GET shows what will happen and a form
to confirm it; the POST of that form (with the session's CSRF token, checked before any
handler runs, and ``confirm=yes``) does it, then goes back to a page that shows the result.

A POST without ``confirm=yes`` only shows the confirmation step again.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect

from agentlink.api.errors import ApiError
from agentlink.api.store import JobStore
from agentlink.dashboard import actions, reads
from agentlink.dashboard.context import BASE, context, settings_of
from agentlink.dashboard.render import clock, html, short
from agentlink.errors import InvalidJobError
from agentlink.jobs import Status


def _confirm(request: Request[Any, Any, Any], nav: str, **values: Any) -> Response[Any]:
    """The confirmation step: ``title``, ``lines``, ``button``, ``back``, ``possible``."""
    values.setdefault("possible", True)
    values.setdefault("danger", False)
    return html("confirm.html", **context(request, nav=nav, action=request.url.path, **values))


async def _confirmed(request: Request[Any, Any, Any]) -> bool:
    form = await request.form()
    return form.get("confirm") == "yes"


def _describe(view: reads.JobView) -> str:
    r = view.record
    return (
        f"Job {r.job_id}: the {r.kind.value} report for {r.suburb}, {r.state.value}, "
        f"created {clock(r.created_at)}, now {r.status.value}."
    )


async def _cancel_step(
    request: Request[Any, Any, Any], store: JobStore, job_id: str
) -> Response[Any]:
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


@get("/jobs/{job_id:str}/cancel", name="dashboard_cancel_step")
async def cancel_step(
    job_id: FromPath[str], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """What cancelling the job will do, and the form that does it."""
    return await _cancel_step(request, store, job_id)


@post("/jobs/{job_id:str}/cancel", name="dashboard_cancel", status_code=303)
async def cancel(
    job_id: FromPath[str], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """Cancel the job (``lua/cancel.lua``); back to its page."""
    if not await _confirmed(request):
        return await _cancel_step(request, store, job_id)
    done = await actions.cancel(store, job_id, ttl_s=settings_of(request).job_ttl_s)
    if done.verdict == "missing":
        await reads.read_job(store, job_id)  # 404 page
    return Redirect(f"{BASE}/jobs/{job_id}?done={done.verdict}", status_code=303)


async def _rerun_step(
    request: Request[Any, Any, Any], store: JobStore, job_id: str
) -> Response[Any]:
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


@get("/jobs/{job_id:str}/rerun", name="dashboard_rerun_step")
async def rerun_step(
    job_id: FromPath[str], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """What re-running the job will do, and the form that does it."""
    return await _rerun_step(request, store, job_id)


@post("/jobs/{job_id:str}/rerun", name="dashboard_rerun", status_code=303)
async def rerun(
    job_id: FromPath[str], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """Queue the job's request again as a new job; on to the new job's page."""
    if not await _confirmed(request):
        return await _rerun_step(request, store, job_id)
    try:
        new_id = await actions.rerun(store, job_id)
    except InvalidJobError as exc:
        raise ApiError(409, str(exc)) from exc
    return Redirect(f"{BASE}/jobs/{new_id}?done=rerun", status_code=303)


def _replay_step(request: Request[Any, Any, Any], dead_id: str) -> Response[Any]:
    return _confirm(
        request,
        "dead",
        title=f"Replay dead letter {dead_id}?",
        lines=["Its job is queued again under the same job id; the dead letter is removed."],
        button="Replay it",
        back=f"{BASE}/dead",
    )


@get("/dead/{dead_id:str}/replay", name="dashboard_replay_step")
async def replay_step(dead_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
    """What replaying the dead letter will do, and the form that does it."""
    return _replay_step(request, dead_id)


@post("/dead/{dead_id:str}/replay", name="dashboard_replay", status_code=303)
async def replay(
    dead_id: FromPath[str], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """Queue the dead letter's job again; back to the dead letters."""
    if not await _confirmed(request):
        return _replay_step(request, dead_id)
    new_id = await actions.replay(store, dead_id)
    return Redirect(f"{BASE}/dead?done={'replayed' if new_id else 'gone'}", status_code=303)


def _replay_all_step(request: Request[Any, Any, Any]) -> Response[Any]:
    return _confirm(
        request,
        "dead",
        title="Replay every dead letter?",
        lines=[
            "Every dead letter's job is queued again under its own job id, oldest first; "
            "letters no worker could ever read stay where they are."
        ],
        button="Replay them all",
        back=f"{BASE}/dead",
    )


@get("/dead/replay-all", name="dashboard_replay_all_step")
async def replay_all_step(request: Request[Any, Any, Any]) -> Response[Any]:
    """What replaying every dead letter will do, and the form that does it."""
    return _replay_all_step(request)


@post("/dead/replay-all", name="dashboard_replay_all", status_code=303)
async def replay_all(
    request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """Queue every readable dead letter again; back to the dead letters."""
    if not await _confirmed(request):
        return _replay_all_step(request)
    await actions.replay_all(store)
    return Redirect(f"{BASE}/dead?done=replayed-all", status_code=303)


def _callback_step(request: Request[Any, Any, Any], dead_id: str) -> Response[Any]:
    return _confirm(
        request,
        "callbacks",
        title=f"Send callback {dead_id} again?",
        lines=[
            "It goes back to the notifiers as a first attempt, with the same delivery id, "
            "so the receiver can tell it from a new one."
        ],
        button="Send it again",
        back=f"{BASE}/callbacks",
    )


@get("/callbacks/{dead_id:str}/replay", name="dashboard_callback_step")
async def callback_step(dead_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
    """What sending the callback again will do, and the form that does it."""
    return _callback_step(request, dead_id)


@post("/callbacks/{dead_id:str}/replay", name="dashboard_callback_replay", status_code=303)
async def callback_replay(
    dead_id: FromPath[str], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """Send the dead callback again; back to the dead callbacks."""
    if not await _confirmed(request):
        return _callback_step(request, dead_id)
    new_id = await actions.replay_callback(store, dead_id)
    return Redirect(f"{BASE}/callbacks?done={'sent' if new_id else 'gone'}", status_code=303)


def _callbacks_all_step(request: Request[Any, Any, Any]) -> Response[Any]:
    return _confirm(
        request,
        "callbacks",
        title="Send every dead callback again?",
        lines=[
            "Each goes back to the notifiers as a first attempt, with its own delivery id, "
            "oldest first. Fix what made the receivers refuse them first, or they come back."
        ],
        button="Send them all again",
        back=f"{BASE}/callbacks",
    )


@get("/callbacks/replay-all", name="dashboard_callbacks_all_step")
async def callbacks_all_step(request: Request[Any, Any, Any]) -> Response[Any]:
    """What sending every dead callback again will do, and the form that does it."""
    return _callbacks_all_step(request)


@post("/callbacks/replay-all", name="dashboard_callbacks_all", status_code=303)
async def callbacks_all(
    request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[Any]:
    """Send every dead callback again; back to the dead callbacks."""
    if not await _confirmed(request):
        return _callbacks_all_step(request)
    await actions.replay_all_callbacks(store)
    return Redirect(f"{BASE}/callbacks?done=sent-all", status_code=303)


HANDLERS = [
    cancel_step,
    cancel,
    rerun_step,
    rerun,
    replay_step,
    replay,
    replay_all_step,
    replay_all,
    callback_step,
    callback_replay,
    callbacks_all_step,
    callbacks_all,
]
