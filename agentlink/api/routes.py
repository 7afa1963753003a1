"""The HTTP routes: submit a report, read a job, fetch its PDF, health and metrics."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response, get, post
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, Parameter
from litestar.response import File, Redirect

from agentlink.api import idempotency, limits, openapi
from agentlink.api.auth import Caller, require_api_key
from agentlink.api.errors import ApiError, FieldError, field_error
from agentlink.api.limits import estimate_wait_s
from agentlink.api.store import (
    Accepted,
    Conditions,
    Existing,
    Full,
    IdempotencyKey,
    JobStore,
    Limited,
    RateLimit,
)
from agentlink.callbacks import CallbackDnsError, CallbackPolicy, CallbackUrlError
from agentlink.errors import (
    JobNotFoundError,
    ServiceBusyError,
    ServiceUnavailableError,
    StorageRejectedError,
)
from agentlink.jobs import (
    AuState,
    JobRecord,
    Kind,
    ReportRequest,
    ReportSpec,
    Status,
    period_end_problem,
)
from agentlink.observe import metrics
from agentlink.observe.http import current_request_id
from agentlink.observe.stream_state import CONTENT_TYPE, exposition
from agentlink.settings import Settings
from agentlink.storage.local import LocalStorage

log = structlog.get_logger(__name__)

_SUBURB = re.compile(r"^[A-Za-z][A-Za-z .'\-]*$")
_STATES = ", ".join(s.value for s in AuState)
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
_API_GUARDS = [require_api_key]
HEALTHY_WITHIN_S = 1.0
"""A Redis reply this recent answers /health without a round trip of its own."""
JobId = Annotated[str, Parameter(description="The job id from the submit answer.")]


class JobAccepted(msgspec.Struct):
    """The answer to a report request."""

    job_id: str
    status: Status
    status_url: str
    position: int
    """Jobs ahead of this one in the queue (0: a worker has it, or will take it next)."""
    estimated_wait_s: int
    """Seconds until a worker is expected to start it (0 once started or finished)."""


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


def parse_request(kind: Kind, body: bytes, content_type: str) -> tuple[ReportSpec, str | None]:
    """Validate and normalise a request body; ``ApiError`` names the field at fault.

    Returns the spec and the body's ``request_id`` (an idempotency key, if any)."""
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
    if period_problem := period_end_problem(request.period_end):
        problems.append(FieldError("period_end", period_problem))
    if problems:
        raise ApiError(422, "the request body is invalid", errors=problems)
    spec = ReportSpec(
        kind=kind,
        suburb=suburb,
        state=AuState(state),
        period_months=request.period_months,
        period_end=request.period_end,
        callback_url=request.callback_url,
        highlight=" ".join((request.highlight or "").split()) or msgspec.UNSET,
    )
    return spec, request.request_id


async def _read_body(request: Request[Any, Any, Any], timeout_s: float) -> bytes:
    """The body, within ``timeout_s``: a client dribbling bytes cannot hold a request open.
    (Its size is capped by Litestar's ``request_max_body_size``: 413.)"""
    try:
        async with asyncio.timeout(timeout_s):
            return await request.body()
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive in {timeout_s:g} s") from None


def _callback_syntax(spec: ReportSpec, policy: CallbackPolicy) -> ReportSpec:
    """422 unless the callback URL is https (or allowed http) on an allowed host; returns
    the spec with the URL normalised. Its addresses are checked by ``_callback_resolves``."""
    if not spec.callback_url:
        return spec
    try:
        target = policy.check_url(spec.callback_url)
    except CallbackUrlError as exc:
        raise _callback_refused(exc) from exc
    return msgspec.structs.replace(spec, callback_url=target.url)


async def _callback_resolves(spec: ReportSpec, policy: CallbackPolicy) -> None:
    """422 unless every address of the callback host is public (it is checked again at
    delivery); 503 if the host cannot be resolved right now."""
    if not spec.callback_url:
        return
    try:
        await policy.resolve(policy.check_url(spec.callback_url))
    except CallbackDnsError as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "30"}) from exc
    except CallbackUrlError as exc:
        raise _callback_refused(exc) from exc


def _callback_refused(exc: CallbackUrlError) -> ApiError:
    return ApiError(
        422, "the callback_url is not allowed", errors=[FieldError("callback_url", str(exc))]
    )


def _answer(
    request: Request[Any, Any, Any], job_id: str, status: Status, position: int, wait_s: int
) -> tuple[JobAccepted, str]:
    status_url = f"{request.base_url}api/job-status/{job_id}"
    body = JobAccepted(
        job_id=job_id,
        status=status,
        status_url=status_url,
        position=position,
        estimated_wait_s=wait_s,
    )
    return body, status_url


def _replay(
    request: Request[Any, Any, Any],
    existing: Existing,
    *,
    key: IdempotencyKey,
    given: tuple[str, str],
    conditions: Conditions,
) -> Response[JobAccepted]:
    """A repeated idempotency key: the same job again (200), or 409 for another body."""
    settings: Settings = request.app.state.settings
    if existing.body_sha256 != key.body_sha256:
        metrics.REQUESTS_REJECTED.labels(reason="conflict").inc()
        raise idempotency.conflict(*given, existing.job_id, settings.idempotency_ttl_s)
    # A record deleted by hand leaves the key naming the job: report it as queued.
    status = Status(existing.status) if existing.status else Status.QUEUED
    wait_s = estimate_wait_s(existing.ahead, conditions.service_s, conditions.consumers)
    body, status_url = _answer(request, existing.job_id, status, existing.ahead, wait_s)
    log.info("report.replayed", job_id=existing.job_id, status=status.value)
    return Response(
        body,
        status_code=200,
        headers={"Location": status_url, "Idempotent-Replayed": "true"},
        media_type=_JSON,
    )


def _rejected(exc: ApiError) -> ApiError:
    metrics.REQUESTS_REJECTED.labels(
        reason="invalid" if exc.status_code < 500 else "unavailable"
    ).inc()
    return exc


def _rate(store: JobStore, settings: Settings, caller: Caller) -> RateLimit:
    return RateLimit(
        redis_key=store.keys.rate(caller.rate_scope),
        limit=settings.rate_limit,
        window_s=settings.rate_limit_window_s,
    )


async def _submit(
    kind: Kind, request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[JobAccepted]:
    settings: Settings = request.app.state.settings
    caller: Caller = request.state.caller
    try:
        body = await _read_body(request, settings.body_timeout_s)
        spec, request_id = parse_request(kind, body, request.content_type[0])
        given = idempotency.choose_key(request.headers.get(idempotency.HEADER), request_id)
        spec = _callback_syntax(spec, request.app.state.callback_policy)
    except ApiError as exc:
        raise _rejected(exc) from None
    key = None
    if given is not None:
        key = idempotency.idempotency_key(
            store.keys, caller.tenant, spec, given[0], settings.idempotency_ttl_s
        )
    try:
        conditions = await store.conditions()
        if spec.callback_url:
            try:
                await _callback_resolves(spec, request.app.state.callback_policy)
            except ApiError as exc:
                # A repeat gets its job even while DNS is failing.
                if key is not None and given and (existing := await store.existing(key.redis_key)):
                    return _replay(request, existing, key=key, given=given, conditions=conditions)
                raise _rejected(exc) from None
        try:
            limits.check_memory(settings, conditions)
        except ApiError:
            metrics.REQUESTS_REJECTED.labels(reason="overloaded").inc()
            raise
        # The job keeps the HTTP request id, so API and consumer log lines of one job share
        # it; the idempotency key is shown to its owner only.
        outcome = await store.enqueue(
            spec,
            rate=_rate(store, settings, caller),
            idempotency=key,
            max_ahead=limits.max_ahead(settings, conditions),
            request_id=current_request_id(),
            idempotency_key=given[0] if given else None,
            owner=caller.tenant,
        )
    except ServiceUnavailableError as exc:
        busy = isinstance(exc, ServiceBusyError)
        metrics.REQUESTS_REJECTED.labels(reason="busy" if busy else "unavailable").inc()
        raise
    if isinstance(outcome, Limited):
        metrics.REQUESTS_REJECTED.labels(reason="rate_limited").inc()
        raise limits.rate_limited(settings, outcome.retry_after_s)
    if isinstance(outcome, Full):
        metrics.REQUESTS_REJECTED.labels(reason="overloaded").inc()
        raise limits.queue_full(settings, conditions, outcome.ahead)
    if isinstance(outcome, Existing):
        assert key is not None
        assert given is not None
        return _replay(request, outcome, key=key, given=given, conditions=conditions)
    return _accepted(request, kind, spec, outcome, conditions)


def _accepted(
    request: Request[Any, Any, Any],
    kind: Kind,
    spec: ReportSpec,
    accepted: Accepted,
    conditions: Conditions,
) -> Response[JobAccepted]:
    metrics.REQUESTS_ACCEPTED.labels(kind=kind.value).inc()
    wait_s = estimate_wait_s(accepted.ahead, conditions.service_s, conditions.consumers)
    body, status_url = _answer(request, accepted.job_id, Status.QUEUED, accepted.ahead, wait_s)
    log.info(
        "report.accepted",
        job_id=accepted.job_id,
        entry_id=accepted.entry_id,
        kind=kind.value,
        suburb=spec.suburb,
        state=spec.state.value,
        position=accepted.ahead,
        estimated_wait_s=wait_s,
        callback=bool(spec.callback_url),
    )
    return Response(body, status_code=202, headers={"Location": status_url}, media_type=_JSON)


_SUBMIT: dict[str, Any] = {
    "status_code": 202,
    "guards": _API_GUARDS,
    "dependencies": {"report_body": Provide(openapi.report_body, sync_to_thread=False)},
    "responses": openapi.SUBMIT_RESPONSES,
    "response_headers": [ResponseHeader(name="Location", documentation_only=True)],
    "operation_class": openapi.ApiOperation,
    "security": openapi.SECURITY,
    "tags": ["reports"],
}


@post(
    "/api/generate-agents-report",
    name="generate_agents_report",
    summary="Queue an agents report",
    **_SUBMIT,
)
async def generate_agents_report(
    request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[JobAccepted]:
    """Queue an agents report: agents of the suburb ranked by sales.

    Answers at once with the job id; poll `status_url` until `status` is `completed`
    (or `failed`/`dead`), or pass a `callback_url` to receive the record when it is done.
    """
    return await _submit(Kind.AGENTS, request, store)


@post(
    "/api/generate-agency-report",
    name="generate_agency_report",
    summary="Queue an agency report",
    **_SUBMIT,
)
async def generate_agency_report(
    request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[JobAccepted]:
    """Queue an agency report: agencies of the suburb ranked by sales.

    Answers at once with the job id; poll `status_url` until `status` is `completed`
    (or `failed`/`dead`), or pass a `callback_url` to receive the record when it is done.
    """
    return await _submit(Kind.AGENCY, request, store)


@get(
    "/api/job-status/{job_id:str}",
    name="job_status",
    summary="A job's status record",
    guards=_API_GUARDS,
    responses=openapi.STATUS_RESPONSES,
    operation_class=openapi.StatusOperation,
    security=openapi.SECURITY,
    tags=["reports"],
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
        job_id, owner=caller.owner_filter, rate=_rate(store, settings, caller)
    )
    if isinstance(record, Limited):
        raise limits.rate_limited(settings, record.retry_after_s)
    return record


@get(
    "/api/jobs/{job_id:str}/pdf",
    name="job_pdf",
    summary="A completed job's PDF",
    media_type="application/pdf",
    guards=_API_GUARDS,
    responses=openapi.PDF_RESPONSES,
    operation_class=openapi.StatusOperation,
    security=openapi.SECURITY,
    tags=["reports"],
)
async def job_pdf(
    job_id: FromPath[JobId],
    request: Request[Any, Any, Any],
    store: NamedDependency[JobStore],
    state: State,
) -> File | Redirect:
    """The finished PDF: 404 if the job is unknown, 409 while it is being made, 410 if it
    failed (it will never have one).

    A report stored in Dropbox is served by Dropbox: a redirect to its shared link, with
    ``dl=1`` so that the link yields the file rather than Dropbox's preview page.
    """
    record = await _read(request, store, job_id)
    if record.status in {Status.FAILED, Status.DEAD}:
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
    local: LocalStorage = state.local_storage
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


@get(
    "/health",
    name="health",
    summary="Is the API up and Redis reachable?",
    responses=openapi.HEALTH_RESPONSES,
    tags=["operations"],
)
async def health(store: NamedDependency[JobStore]) -> Response[dict[str, str]]:
    """200 when Redis answers, 503 otherwise.

    Cheap under load: a Redis reply within the last ``HEALTHY_WITHIN_S`` is proof enough,
    so a burst of requests costs no extra round trip; otherwise a PING decides. All
    connections in use is not Redis being down: that answers 200 with ``"redis": "busy"``.
    """
    if time.monotonic() - store.last_ok < HEALTHY_WITHIN_S:
        return Response({"status": "ok", "redis": "ok"}, media_type=_JSON)
    try:
        await store.ping()
    except ServiceBusyError:
        return Response({"status": "ok", "redis": "busy"}, media_type=_JSON)
    except ServiceUnavailableError:
        return Response(
            {"status": "unavailable", "redis": "down"}, status_code=503, media_type=_JSON
        )
    return Response({"status": "ok", "redis": "ok"}, media_type=_JSON)


@get("/metrics", name="metrics", include_in_schema=False)
async def metrics_endpoint(store: NamedDependency[JobStore], state: State) -> Response[bytes]:
    """Prometheus exposition: the API's metrics and the stream state, read from Redis now."""
    settings: Settings = state.settings
    return Response(await exposition(store.client, settings), media_type=CONTENT_TYPE)
