"""A report request's body: its content types, its decoding, the checks a Struct cannot
express (suburb, state, period), and the callback URL's policy."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from typing import Any

import msgspec
from litestar import Request

from agentlink.api.errors import ApiError, FieldError, field_error
from agentlink.callbacks import CallbackDnsError, CallbackPolicy, CallbackUrlError
from agentlink.jobs import AuState, Kind, ReportRequest, ReportSpec, period_end_problem

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
_SUBURB = re.compile(r"^[A-Za-z][A-Za-z .'\-]*$")
_STATES = ", ".join(s.value for s in AuState)


def _decode(body: bytes, content_type: str) -> ReportRequest:
    if content_type == FORM:
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
    if content_type not in {JSON, FORM, ""}:
        raise ApiError(415, f"send the body as {JSON} (or {FORM}), not {content_type}")
    try:
        request = _decode(body, content_type or JSON)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "the request body is invalid", errors=[field_error(exc)]) from exc
    suburb = " ".join(request.suburb.split())
    problems: list[FieldError] = []
    if not _SUBURB.match(suburb):
        problems.append(
            FieldError(
                "suburb",
                "must be a suburb name: letters (A-Z), spaces, hyphens, apostrophes and "
                "periods, starting with a letter",
            )
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


async def read_body(request: Request[Any, Any, Any], timeout_s: float) -> bytes:
    """The body, within ``timeout_s``: a client dribbling bytes cannot hold a request open.
    (Its size is capped by Litestar's ``request_max_body_size``: 413.)"""
    try:
        async with asyncio.timeout(timeout_s):
            return await request.body()
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive in {timeout_s:g} s") from None


def callback_syntax(spec: ReportSpec, policy: CallbackPolicy) -> ReportSpec:
    """422 unless the callback URL is https (or allowed http) on an allowed host; returns
    the spec with the URL normalised. Its addresses are checked by ``callback_resolves``."""
    if not spec.callback_url:
        return spec
    try:
        target = policy.check_url(spec.callback_url)
    except CallbackUrlError as exc:
        raise _callback_refused(exc) from exc
    return msgspec.structs.replace(spec, callback_url=target.url)


async def callback_resolves(spec: ReportSpec, policy: CallbackPolicy) -> None:
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
