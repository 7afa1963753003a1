"""Submitting a report: the two submit routes, idempotent replays, and the answer.

Both routes share one handler body (``_submit``) and one declaration (``_submit_route``);
they differ only in the report kind, which the path names.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler

from agentlink.api import idempotency, limits, openapi, responses
from agentlink.api.auth import Caller, require_api_key
from agentlink.api.errors import ApiError
from agentlink.api.limits import estimate_wait_s
from agentlink.api.routes.body import (
    JSON,
    callback_resolves,
    callback_syntax,
    parse_request,
    read_body,
)
from agentlink.api.store import JobStore
from agentlink.api.submission import (
    Accepted,
    Conditions,
    Existing,
    Full,
    IdempotencyKey,
    Limited,
)
from agentlink.errors import ServiceBusyError, ServiceUnavailableError
from agentlink.jobs import Kind, ReportSpec, Status
from agentlink.observe import metrics
from agentlink.observe.http import current_request_id
from agentlink.settings import Settings

log = structlog.get_logger(__name__)


class JobAccepted(msgspec.Struct):
    """The answer to a report request."""

    job_id: str
    status: Status
    status_url: str
    position: int
    """Jobs ahead of this one in the queue (0: a worker has it, or will take it next)."""
    estimated_wait_s: int
    """Seconds until a worker is expected to start it (0 once started or finished)."""


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
        media_type=JSON,
    )


async def _repeat(
    request: Request[Any, Any, Any],
    store: JobStore,
    key: IdempotencyKey | None,
    given: tuple[str, str] | None,
    conditions: Conditions,
) -> Response[JobAccepted] | None:
    """The answer to a request about to be refused before its script ran (DNS failing,
    Redis memory high): its job's, if its idempotency key was used already (one more round
    trip, taken only on the way to a refusal)."""
    if key is None or given is None:
        return None
    existing = await store.existing(key.redis_key)
    if existing is None:
        return None
    return _replay(request, existing, key=key, given=given, conditions=conditions)


def _rejected(exc: ApiError) -> ApiError:
    metrics.REQUESTS_REJECTED.labels(
        reason="invalid" if exc.status_code < 500 else "unavailable"
    ).inc()
    return exc


async def _submit(
    kind: Kind, request: Request[Any, Any, Any], store: NamedDependency[JobStore]
) -> Response[JobAccepted]:
    settings: Settings = request.app.state.settings
    caller: Caller = request.state.caller
    try:
        body = await read_body(request, settings.body_timeout_s)
        spec, request_id = parse_request(kind, body, request.content_type[0])
        given = idempotency.choose_key(request.headers.get(idempotency.HEADER), request_id)
        spec = callback_syntax(spec, request.app.state.callback_policy)
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
                await callback_resolves(spec, request.app.state.callback_policy)
            except ApiError as exc:
                # A repeat gets its job even while DNS is failing.
                if repeat := await _repeat(request, store, key, given, conditions):
                    return repeat
                raise _rejected(exc) from None
        try:
            limits.check_memory(settings, conditions)
        except ApiError:
            # A repeat gets its job even while Redis memory refuses new work.
            if repeat := await _repeat(request, store, key, given, conditions):
                return repeat
            metrics.REQUESTS_REJECTED.labels(reason="overloaded").inc()
            raise
        # The job keeps the HTTP request id, so API and consumer log lines of one job share
        # it; the idempotency key is shown to its owner only.
        outcome = await store.enqueue(
            spec,
            rate=limits.caller_rate(store.keys, settings, caller),
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
    return Response(body, status_code=202, headers={"Location": status_url}, media_type=JSON)


_SUBMIT: dict[str, Any] = {
    "status_code": 202,
    "before_request": require_api_key,
    "dependencies": {"report_body": Provide(openapi.report_body, sync_to_thread=False)},
    "responses": responses.SUBMIT_RESPONSES,
    "response_headers": [ResponseHeader(name="Location", documentation_only=True)],
    "operation_class": openapi.ApiOperation,
    "security": openapi.SECURITY,
    "tags": ["reports"],
}
_RANKS = {Kind.AGENTS: "agents", Kind.AGENCY: "agencies"}


def _submit_route(kind: Kind) -> HTTPRouteHandler:
    """``POST /api/generate-<kind>-report``."""

    async def handler(
        request: Request[Any, Any, Any], store: NamedDependency[JobStore]
    ) -> Response[JobAccepted]:
        return await _submit(kind, request, store)

    # The function's name makes the operationId (ApiGenerateAgentsReportGenerateAgentsReport).
    handler.__name__ = handler.__qualname__ = f"generate_{kind.value}_report"
    return post(
        f"/api/generate-{kind.value}-report",
        name=f"generate_{kind.value}_report",
        summary=f"Queue an {kind.value} report",
        description=(
            f"Queue an {kind.value} report: {_RANKS[kind]} of the suburb ranked by sales.\n\n"
            "Answers at once with the job id; poll `status_url` until `status` is `completed`\n"
            "(or `failed`/`dead`/`cancelled`), or pass a `callback_url` to receive the record "
            "when it is done."
        ),
        **_SUBMIT,
    )(handler)


generate_agents_report = _submit_route(Kind.AGENTS)
generate_agency_report = _submit_route(Kind.AGENCY)
