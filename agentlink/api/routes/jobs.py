"""Reading a job: its status record and its PDF (a file here, or a link to Dropbox)."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from litestar.response import File, Redirect

from agentlink.api import limits, openapi, responses
from agentlink.api.auth import Caller, require_api_key
from agentlink.api.errors import ApiError
from agentlink.api.store import JobStore
from agentlink.api.submission import Limited, RateLimit
from agentlink.errors import JobNotFoundError, StorageRejectedError
from agentlink.jobs import JobRecord, Status
from agentlink.settings import Settings
from agentlink.storage.local import LocalStorage

JobId = Annotated[str, Parameter(description="The job id from the submit answer.")]
_READ: dict[str, Any] = {
    "before_request": require_api_key,
    "operation_class": openapi.StatusOperation,
    "security": openapi.SECURITY,
    "tags": ["reports"],
}
"""What both routes that read a job declare alike."""


@get(
    "/api/job-status/{job_id:str}",
    name="job_status",
    summary="A job's status record",
    responses=responses.STATUS_RESPONSES,
    **_READ,
)
async def job_status(
    job_id: FromPath[JobId], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> JobRecord:
    """The job's status record; `status == "completed"` once its PDF is stored."""
    record = await _read(request, store, job_id)
    if (
        record.result is not None
        and record.result.url is None
        and record.status == Status.COMPLETED
    ):
        record.result.url = f"{request.base_url}api/jobs/{job_id}/pdf"
    return record


async def _read(request: Request[Any, Any, Any], store: JobStore, job_id: str) -> JobRecord:
    """The job's record if the caller may see it (404 otherwise), in one round trip that
    also spends the caller's rate limit."""
    settings: Settings = request.app.state.settings
    caller: Caller = request.state.caller
    record = await store.read(
        job_id, owner=caller.owner_filter, rate=limits.caller_rate(store.keys, settings, caller)
    )
    if isinstance(record, Limited):
        raise limits.rate_limited(settings, record.retry_after_s)
    return record


@get(
    "/api/jobs/{job_id:str}/pdf",
    name="job_pdf",
    summary="A completed job's PDF",
    media_type="application/pdf",
    responses=responses.PDF_RESPONSES,
    **_READ,
)
async def job_pdf(
    job_id: FromPath[JobId],
    request: Request[Any, Any, Any],
    store: NamedDependency[JobStore],
    state: State,
) -> File | Redirect:
    """The finished PDF: 404 if the job is unknown, 409 while it is being made, 410 if it
    failed or was cancelled (it will never have one).

    A report stored in Dropbox is served by Dropbox: a redirect to its shared link, with
    ``dl=1`` so that the link yields the file rather than Dropbox's preview page.
    """
    record = await _read(request, store, job_id)
    local: LocalStorage = state.local_storage
    return pdf_answer(job_id, record, local)


def pdf_answer(job_id: str, record: JobRecord, local: LocalStorage) -> File | Redirect:
    """The answer to a request for the PDF of ``record`` (the API's route and the
    dashboard's): the file, a redirect to Dropbox, or the error saying why there is none."""
    if record.status in {Status.FAILED, Status.DEAD, Status.CANCELLED}:
        raise ApiError(
            410,
            f"job {job_id} {record.status.value} and has no PDF; it never will "
            f"({record.error or 'no error recorded'}); submit a new request",
        )
    if record.status != Status.COMPLETED or record.result is None:
        raise ApiError(
            409,
            f"job {job_id} is {record.status.value}: its PDF is not made yet; poll "
            "its status until it is completed, then fetch the PDF",
        )
    if record.result.storage == "dropbox":
        if not record.result.url:
            raise ApiError(404, f"the PDF of job {job_id} is in Dropbox but has no shared link")
        link = urllib.parse.urlsplit(record.result.url)
        query = [
            (key, value)
            for key, value in urllib.parse.parse_qsl(link.query, keep_blank_values=True)
            if key != "dl"
        ]
        query.append(("dl", "1"))
        return Redirect(
            urllib.parse.urlunsplit(link._replace(query=urllib.parse.urlencode(query))),
            status_code=302,
            media_type="text/plain",  # not the handler's application/pdf: the body is empty
        )
    try:
        path = local.resolve(record.result.path)
    except StorageRejectedError as exc:
        raise JobNotFoundError(job_id) from exc
    if not path.is_file():
        raise ApiError(
            404,
            f"the PDF of job {job_id} is gone: the file was removed from this server's "
            "report storage; submit a new request to make it again",
        )
    return File(
        path=path,
        filename=path.name,
        media_type="application/pdf",
        content_disposition_type="inline",
    )


@post(
    "/api/jobs/{job_id:str}/cancel",
    name="job_cancel",
    summary="Cancel a job",
    status_code=200,
    responses=responses.CANCEL_RESPONSES,
    **{**_READ, "operation_class": openapi.CancelOperation},
)
async def job_cancel(
    job_id: FromPath[JobId], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> JobRecord:
    """Cancel a job that is not finished: a queued job becomes `cancelled` at once and is
    never made; a job being made gets `cancel_requested`, and its worker stops the render
    within a third of a lease (AGENTLINK_LEASE_S) and records `cancelled`, storing nothing;
    once its report is rendered and being stored, the cancel comes too late and the job
    completes. Its callback is sent with the status the job ends with. The answer is the
    job's record; 409 once the job is finished. Only the key that created the job (or an
    operator key) may cancel it."""
    settings: Settings = request.app.state.settings
    caller: Caller = request.state.caller
    rate = limits.caller_rate(store.keys, settings, caller)
    if rate.limit > 0:
        limited = await store.count(rate.redis_key, rate.limit, rate.window_s)
        if limited is not None:
            raise limits.rate_limited(settings, limited.retry_after_s)
    by = "the API" if caller.tenant == "open" else f"API key {caller.tenant}"
    verdict, status = await store.cancel(
        job_id, owner=caller.owner_filter, ttl_s=settings.job_ttl_s, by=by
    )
    if verdict == "missing":
        raise JobNotFoundError(job_id)
    if verdict == "finished":
        raise ApiError(409, f"job {job_id} is {status} already: there is nothing left to cancel")
    unlimited = RateLimit(redis_key=store.keys.rate("unlimited"), limit=0, window_s=1)
    record = await store.read(job_id, owner=caller.owner_filter, rate=unlimited)
    if isinstance(record, Limited):  # cannot be: no limit was given
        raise limits.rate_limited(settings, record.retry_after_s)
    return record
