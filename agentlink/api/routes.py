"""The HTTP routes: submit a report, read a job, fetch its PDF, health and metrics."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import File, Redirect
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentlink import metrics
from agentlink.api.auth import require_api_key
from agentlink.api.errors import ApiError, FieldError, field_error
from agentlink.api.store import JobStore
from agentlink.errors import JobNotFoundError, ServiceUnavailableError, StorageRejectedError
from agentlink.jobs import AuState, JobRecord, Kind, ReportRequest, ReportSpec, Status
from agentlink.storage.local import LocalStorage

log = structlog.get_logger(__name__)

_SUBURB = re.compile(r"^[A-Za-z][A-Za-z .'\-]*$")
_STATES = ", ".join(s.value for s in AuState)
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"


class JobAccepted(msgspec.Struct):
    """The answer to a report request."""

    job_id: str
    status: Status
    status_url: str


def _decode(body: bytes, content_type: str) -> ReportRequest:
    if content_type == _FORM:
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return msgspec.convert(form, ReportRequest, strict=False)
    if not body.strip():
        raise ApiError(
            400, 'the request body is empty; send JSON like {"suburb": "Manly", "state": "NSW"}'
        )
    try:
        return msgspec.json.decode(body, type=ReportRequest)
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc


def parse_request(kind: Kind, body: bytes, content_type: str) -> ReportSpec:
    """Validate and normalise a request body; ``ApiError`` names the field at fault."""
    if content_type not in {_JSON, _FORM, ""}:
        raise ApiError(415, f"send the body as {_JSON} (or {_FORM}), not {content_type}")
    try:
        request = _decode(body, content_type or _JSON)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "the request body is invalid", errors=[field_error(exc)]) from exc
    suburb = " ".join(request.suburb.split())
    problems: list[FieldError] = []
    if not _SUBURB.match(suburb):
        problems.append(
            FieldError("suburb", "must be a suburb name: letters, spaces, hyphens, apostrophes")
        )
    state = request.state.strip().upper()
    if state not in AuState.__members__:
        problems.append(FieldError("state", f"must be one of {_STATES}, got {request.state!r}"))
    if problems:
        raise ApiError(422, "the request body is invalid", errors=problems)
    return ReportSpec(
        kind=kind,
        suburb=suburb,
        state=AuState(state),
        period_months=request.period_months,
        period_end=request.period_end,
    )


async def _submit(
    kind: Kind, request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[JobAccepted]:
    try:
        spec = parse_request(kind, await request.body(), request.content_type[0])
    except ApiError as exc:
        metrics.REQUESTS_REJECTED.labels(
            reason="invalid" if exc.status_code < 500 else "error"
        ).inc()
        raise
    try:
        accepted = await store.enqueue(spec)
    except ServiceUnavailableError:
        metrics.REQUESTS_REJECTED.labels(reason="unavailable").inc()
        raise
    metrics.REQUESTS_ACCEPTED.labels(kind=kind.value).inc()
    status_url = str(request.url_for("job_status", job_id=accepted.job_id))
    log.info(
        "report.accepted",
        job_id=accepted.job_id,
        entry_id=accepted.entry_id,
        kind=kind.value,
        suburb=spec.suburb,
        state=spec.state.value,
    )
    return Response(
        JobAccepted(job_id=accepted.job_id, status=Status.QUEUED, status_url=status_url),
        status_code=202,
        headers={"Location": status_url},
        media_type=_JSON,
    )


@post(
    "/api/generate-agents-report",
    name="generate_agents_report",
    status_code=202,
    guards=[require_api_key],
)
async def generate_agents_report(
    request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[JobAccepted]:
    """Queue an agents report: agents of the suburb ranked by sales."""
    return await _submit(Kind.AGENTS, request, store)


@post(
    "/api/generate-agency-report",
    name="generate_agency_report",
    status_code=202,
    guards=[require_api_key],
)
async def generate_agency_report(
    request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[JobAccepted]:
    """Queue an agency report: agencies of the suburb ranked by sales."""
    return await _submit(Kind.AGENCY, request, store)


@get("/api/job-status/{job_id:str}", name="job_status", guards=[require_api_key])
async def job_status(
    job_id: FromPath[str], request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> JobRecord:
    """The job's status record; ``status == "completed"`` once its PDF is stored."""
    record = await store.get(job_id)
    if (
        record.result is not None
        and record.result.url is None
        and record.status == Status.COMPLETED
    ):
        record.result.url = str(request.url_for("job_pdf", job_id=job_id))
    return record


@get(
    "/api/jobs/{job_id:str}/pdf",
    name="job_pdf",
    media_type="application/pdf",
    guards=[require_api_key],
)
async def job_pdf(
    job_id: FromPath[str], store: NamedDependency[JobStore], state: State
) -> File | Redirect:
    """The finished PDF (404 if the job is unknown, 409 while it is not completed).

    A report stored in Dropbox is served by Dropbox: a redirect to its shared link, with
    ``dl=1`` so that the link yields the file rather than Dropbox's preview page.
    """
    record = await store.get(job_id)
    if record.status != Status.COMPLETED or record.result is None:
        raise ApiError(
            409, f"job {job_id} is {record.status.value}; the PDF exists once it is completed"
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
    local: LocalStorage = state.local_storage
    try:
        path = local.resolve(record.result.path)
    except StorageRejectedError as exc:
        raise JobNotFoundError(job_id) from exc
    if not path.is_file():
        raise ApiError(
            404, f"the PDF of job {job_id} is not in this server's output folder ({path})"
        )
    return File(
        path=path,
        filename=path.name,
        media_type="application/pdf",
        content_disposition_type="inline",
    )


@get("/health", name="health")
async def health(store: NamedDependency[JobStore]) -> Response[dict[str, str]]:
    """200 when Redis answers, 503 otherwise."""
    try:
        await store.ping()
    except ServiceUnavailableError:
        return Response(
            {"status": "unavailable", "redis": "down"}, status_code=503, media_type=_JSON
        )
    return Response({"status": "ok", "redis": "ok"}, media_type=_JSON)


@get("/metrics", name="metrics", include_in_schema=False)
async def metrics_endpoint() -> Response[bytes]:
    """Prometheus exposition of the API's metrics."""
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
