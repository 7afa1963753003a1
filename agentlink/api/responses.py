"""What each route answers, as the OpenAPI schema documents it: every status code with its
description and examples, in the one error shape (``Problem``), and the example bodies the
operations show (``agentlink.api.openapi`` puts them in place)."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from agentlink.api.errors import Problem

JSON = "application/json"

JOB_ID = "6f1c2a9b-3d4e-4f50-8a61-7b2c3d4e5f60"
REQUEST_EXAMPLES = {
    "minimal": Example(
        summary="The suburb and its state",
        value={"suburb": "Manly", "state": "NSW"},
    ),
    "make": Example(
        summary="From Make: a period, a custom webhook for the result, an idempotency key",
        value={
            "suburb": "Surry Hills",
            "state": "NSW",
            "period_months": 6,
            "period_end": "2026-10-31",
            "callback_url": "https://hook.eu1.make.com/abc123def456",
            "request_id": "crm-row-4711",
        },
    ),
}
FORM_EXAMPLE = Example(
    summary="The same as a form",
    value="suburb=Manly&state=NSW&period_months=12",
)
ACCEPTED_EXAMPLE = {
    "job_id": JOB_ID,
    "status": "queued",
    "status_url": f"https://agentlink.example.com/api/job-status/{JOB_ID}",
    "position": 3,
    "estimated_wait_s": 8,
}
RECORD_EXAMPLE = {
    "job_id": JOB_ID,
    "kind": "agents",
    "status": "completed",
    "suburb": "Manly",
    "state": "NSW",
    "period_months": 12,
    "period_end": None,
    "request_id": "crm-row-4711",
    "created_at": "2026-11-26T13:40:00.123+00:00",
    "started_at": "2026-11-26T13:40:01.020+00:00",
    "finished_at": "2026-11-26T13:40:02.870+00:00",
    "attempts": 1,
    "consumer": "web-1-1",
    "error": None,
    "result": {
        "storage": "dropbox",
        "path": "/AgentLink/NSW/Manly/agents-Manly-2026-11-26-6f1c2a9b.pdf",
        "url": "https://www.dropbox.com/scl/fi/abc/agents-Manly-2026-11-26-6f1c2a9b.pdf?dl=0",
        "bytes": 37017,
        "pages": 3,
        "rev": "015f1c2a9b",
    },
    "errors": [],
}
CANCELLED_EXAMPLE = {
    **RECORD_EXAMPLE,
    "status": "cancelled",
    "started_at": None,
    "finished_at": "2026-11-26T13:40:00.480+00:00",
    "attempts": 0,
    "consumer": None,
    "error": "cancelled by API key key-3f2a9c1d0b4e5a67 before it was made",
    "result": None,
}


def _problem(status: int, title: str, detail: str, field: tuple[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"status": status, "title": title, "detail": detail}
    if field:
        body["errors"] = [{"field": field[0], "message": field[1]}]
    return body


def problem(description: str, *examples: tuple[str, dict[str, Any]]) -> ResponseSpec:
    """An error answer in the one error shape, with examples."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        generate_examples=False,
        media_type=JSON,
        examples=[Example(summary=summary, value=value) for summary, value in examples],
    )


UNAUTHORIZED = problem(
    "No or wrong API key (with AGENTLINK_API_KEYS set).",
    (
        "missing key",
        _problem(
            401,
            "Unauthorized",
            "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        ),
    ),
)
RATE_LIMITED = problem(
    "Over the caller's rate limit (its API key's; its address's when the API has no keys), "
    "or too many failed authentications from this address; "
    "`Retry-After` says when to try again.",
    (
        "rate limited",
        _problem(
            429,
            "Too many requests",
            "rate limit of 120 requests per 60 s exceeded for this API key; retry in 2 s",
        ),
    ),
)
UNAVAILABLE = problem(
    "Redis unreachable, every Redis connection of this API process busy for longer than "
    "AGENTLINK_REDIS_POOL_WAIT_S, Redis memory past its high-water mark, or the queue too long "
    "for AGENTLINK_MAX_WAIT_S; `Retry-After` says when to try again. Nothing was queued.",
    (
        "queue too long",
        _problem(
            503,
            "Service unavailable",
            "the queue is too long: a new job would wait about 4000 s (800 jobs ahead, 1 "
            "workers), more than the 3600 s allowed (AGENTLINK_MAX_WAIT_S); retry in 400 s",
        ),
    ),
    (
        "Redis down",
        _problem(
            503, "Service unavailable", "the job queue (Redis) is unreachable; try again shortly"
        ),
    ),
    (
        "busy",
        _problem(
            503,
            "Service unavailable",
            "the API is busy: no Redis connection came free within 10 s; retry shortly",
        ),
    ),
)
NOT_FOUND = problem(
    "No such job: unknown, its record expired, or it was created with another API key.",
    ("unknown job", _problem(404, "Not found", f"no job with id '{JOB_ID}'")),
)

SUBMIT_RESPONSES: dict[int, ResponseSpec] = {
    200: ResponseSpec(
        data_container=None,
        description=(
            "A repeat of an earlier request (same idempotency key, same body): the job that "
            "request created, nothing new queued. Same shape as the 202 answer."
        ),
        media_type=JSON,
        generate_examples=False,
    ),
    400: problem(
        "Malformed or empty JSON.",
        (
            "malformed",
            _problem(400, "Bad request", "the request body is not valid JSON: malformed"),
        ),
    ),
    401: UNAUTHORIZED,
    408: problem(
        "The body did not arrive within AGENTLINK_BODY_TIMEOUT_S.",
        ("slow", _problem(408, "Request timeout", "the request body did not arrive in 10 s")),
    ),
    409: problem(
        "The idempotency key was used for a different request body.",
        (
            "key reused",
            _problem(
                409,
                "Conflict",
                f"this idempotency key was already used for a different request (job "
                f"{JOB_ID}) within the last 24 h; send the original body to get that job "
                "back, or a new key for a new request",
                ("Idempotency-Key", "'crm-row-4711' belongs to another request body"),
            ),
        ),
    ),
    413: problem(
        "Body larger than AGENTLINK_MAX_BODY_BYTES.",
        ("too large", _problem(413, "Request body too large", "the request body is larger")),
    ),
    415: problem(
        "Neither JSON nor a form.",
        (
            "xml",
            _problem(
                415,
                "Unsupported media type",
                "send the body as application/json (or application/x-www-form-urlencoded), "
                "not application/xml",
            ),
        ),
    ),
    422: problem(
        "A field is invalid (unknown fields too); `errors` names each one. A `callback_url` "
        "that is not https, not an allowed host, or resolves to a private address is refused "
        "here.",
        (
            "bad state",
            _problem(
                422,
                "Invalid request",
                "the request body is invalid",
                ("state", "must be one of NSW, VIC, QLD, SA, WA, TAS, ACT, NT, got 'Queensland'"),
            ),
        ),
        (
            "callback refused",
            _problem(
                422,
                "Invalid request",
                "the callback_url is not allowed",
                (
                    "callback_url",
                    "callback_url host '169.254.169.254' is 169.254.169.254, a link-local "
                    "address; callbacks go to public addresses only",
                ),
            ),
        ),
    ),
    429: RATE_LIMITED,
    503: UNAVAILABLE,
}
STATUS_RESPONSES: dict[int, ResponseSpec] = {
    401: UNAUTHORIZED,
    404: NOT_FOUND,
    429: RATE_LIMITED,
    503: UNAVAILABLE,
}
PDF_RESPONSES: dict[int, ResponseSpec] = {
    302: ResponseSpec(
        data_container=None,
        description="A Dropbox report: redirect to its shared link (`dl=1`, the file itself).",
        media_type="text/plain",
        generate_examples=False,
    ),
    401: UNAUTHORIZED,
    404: NOT_FOUND,
    409: problem(
        "The job is not completed yet: poll its status, then fetch the PDF.",
        (
            "not ready",
            _problem(
                409,
                "Conflict",
                f"job {JOB_ID} is queued: its PDF is not made yet; poll its status until it "
                "is completed, then fetch the PDF",
            ),
        ),
    ),
    410: problem(
        "The job failed, was dead-lettered or was cancelled: it has no PDF and never will.",
        (
            "failed",
            _problem(
                410,
                "Gone",
                f"job {JOB_ID} failed and has no PDF; it never will (no sales recorded for "
                "Nowhere, NSW in the period); submit a new request",
            ),
        ),
    ),
    429: RATE_LIMITED,
    503: UNAVAILABLE,
}
CANCEL_RESPONSES: dict[int, ResponseSpec] = {
    401: UNAUTHORIZED,
    404: NOT_FOUND,
    409: problem(
        "The job is finished already (completed, failed, dead or cancelled): nothing to cancel.",
        (
            "finished",
            _problem(
                409,
                "Conflict",
                f"job {JOB_ID} is completed already: there is nothing left to cancel",
            ),
        ),
    ),
    429: RATE_LIMITED,
    503: UNAVAILABLE,
}
HEALTH_RESPONSES: dict[int, ResponseSpec] = {
    503: ResponseSpec(
        data_container=dict[str, str],
        description="Redis is unreachable.",
        media_type=JSON,
        generate_examples=False,
        examples=[Example(summary="Redis down", value={"status": "unavailable", "redis": "down"})],
    ),
}
