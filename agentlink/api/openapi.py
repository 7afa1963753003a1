"""The OpenAPI description served at ``/schema/openapi.json``: the security schemes, the
operations completed with what Litestar cannot generate, and the callback (webhook) a
finished job sends. What each route answers, with examples, is in ``responses``.

The submit handlers read the raw body themselves (JSON with any charset, or a form), so
Litestar sees no ``data`` parameter. ``report_body`` is a documentation-only dependency
that declares one: Litestar documents a dependency's ``data`` even though no handler asks
for the dependency, so it is never called. ``ApiOperation`` then adds the form encoding,
the examples and the ``Retry-After`` headers that the generated operation lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType

from agentlink.api.responses import (
    ACCEPTED_EXAMPLE,
    CANCELLED_EXAMPLE,
    FORM_EXAMPLE,
    JSON,
    RECORD_EXAMPLE,
    REQUEST_EXAMPLES,
)
from agentlink.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from agentlink.jobs import ReportRequest

FORM = "application/x-www-form-urlencoded"
SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}, {"ApiKeyHeader": []}]
COMPONENTS = Components(
    security_schemes={
        "BearerAuth": SecurityScheme(
            type="http",
            scheme="bearer",
            description="`Authorization: Bearer <key>`, a key of AGENTLINK_API_KEYS",
        ),
        "ApiKeyHeader": SecurityScheme(
            type="apiKey",
            name="X-API-Key",
            security_scheme_in="header",
            description="`X-API-Key: <key>`, a key of AGENTLINK_API_KEYS",
        ),
    }
)


def report_body(data: ReportRequest) -> None:
    """Documentation only (see the module docstring): never called."""
    raise AssertionError("report_body documents the request body; no handler calls it")


_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
    description="Seconds to wait before trying again.",
)
_LOCATION = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, format=None),
    description="The job's status URL (`status_url`).",
)
_IDEMPOTENCY_PARAMETER = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
    description=(
        "Any text that identifies this request (e.g. a UUID, or the id of the record the "
        "report is for). A repeat with the same key and body returns the same job (200); "
        "the same key with another body is a 409. Kept for AGENTLINK_IDEMPOTENCY_TTL_S "
        "(24 h); scoped per API key and per report kind. The body's `request_id` does the "
        "same when the header is absent."
    ),
)


def _with_retry_after(responses: dict[str, Any] | None) -> dict[str, Any]:
    """``responses`` with the ``Retry-After`` header on its 429 and 503 answers."""
    responses = responses or {}
    for code in ("429", "503"):
        response = responses.get(code)
        if isinstance(response, OpenAPIResponse):
            response.headers = {"Retry-After": _RETRY_AFTER}
    return responses


@dataclass
class ApiOperation(Operation):
    """The generated operation, completed: form bodies, examples, headers of answers."""

    def __post_init__(self) -> None:
        responses = _with_retry_after(self.responses)
        if isinstance(self.request_body, RequestBody) and JSON in self.request_body.content:
            self._complete_report_body(self.request_body, responses)

    def _complete_report_body(self, body: RequestBody, responses: dict[str, Any]) -> None:
        schema = body.content[JSON].schema
        body.description = (
            "The report request, as JSON (any charset) or as a form; numbers and dates in a "
            "form are read like their JSON forms."
        )
        body.content = {
            JSON: OpenAPIMediaType(schema=schema, examples=dict(REQUEST_EXAMPLES)),
            FORM: OpenAPIMediaType(schema=schema, examples={"form": FORM_EXAMPLE}),
        }
        accepted = responses.get("202")
        if isinstance(accepted, OpenAPIResponse):
            accepted.headers = {"Location": _LOCATION}
            accepted.description = "Queued: poll `status_url`, or wait for the callback."
            if accepted.content and JSON in accepted.content:
                media = accepted.content[JSON]
                media.examples = {"queued": Example(value=ACCEPTED_EXAMPLE)}
                replay = responses.get("200")
                if isinstance(replay, OpenAPIResponse):
                    replay.content = {
                        JSON: OpenAPIMediaType(
                            schema=media.schema,
                            examples={"replayed": Example(value=ACCEPTED_EXAMPLE)},
                        )
                    }
        self.parameters = [*(self.parameters or []), _IDEMPOTENCY_PARAMETER]
        self.callbacks = {"jobFinished": {"{$request.body#/callback_url}": callback_path_item()}}


@dataclass
class StatusOperation(Operation):
    """The status route: an example record."""

    def __post_init__(self) -> None:
        responses = _with_retry_after(self.responses)
        ok = responses.get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content and JSON in ok.content:
            ok.content[JSON].examples = {"completed": Example(value=RECORD_EXAMPLE)}


@dataclass
class CancelOperation(Operation):
    """The cancel route: the record of a job cancelled while queued."""

    def __post_init__(self) -> None:
        responses = _with_retry_after(self.responses)
        ok = responses.get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content and JSON in ok.content:
            ok.content[JSON].examples = {"cancelled": Example(value=CANCELLED_EXAMPLE)}


def callback_path_item() -> PathItem:
    """The POST a finished job sends to its ``callback_url``."""
    header = Schema(type=OpenAPIType.STRING)
    return PathItem(
        post=Operation(
            summary="A job finished (completed, failed, dead or cancelled)",
            description=(
                "The job record, as `GET /api/job-status/{job_id}` returns it. Retried with "
                "back-off on timeouts, 429 and 5xx; a 2xx answer within "
                "AGENTLINK_CALLBACK_TIMEOUT_S confirms it. Deliveries are at least once: "
                "de-duplicate on `job_id` + `status` (or `X-AgentLink-Delivery`)."
            ),
            parameters=[
                Parameter(
                    name=TIMESTAMP_HEADER,
                    param_in="header",
                    required=True,
                    schema=header,
                    description="Unix time (seconds) of this delivery attempt.",
                ),
                Parameter(
                    name=SIGNATURE_HEADER,
                    param_in="header",
                    required=False,
                    schema=header,
                    description=(
                        "`sha256=` + hex HMAC-SHA256 of `<timestamp>.<raw body>` keyed with "
                        "AGENTLINK_WEBHOOK_SECRET (absent when no secret is set)."
                    ),
                ),
                Parameter(
                    name="X-AgentLink-Delivery",
                    param_in="header",
                    required=True,
                    schema=header,
                    description="Stable id of this callback across its retries.",
                ),
            ],
            request_body=RequestBody(
                required=True,
                content={
                    JSON: OpenAPIMediaType(
                        schema=Reference(ref="#/components/schemas/JobRecord"),
                        examples={"completed": Example(value=RECORD_EXAMPLE)},
                    )
                },
            ),
            responses={"200": OpenAPIResponse(description="Received (any 2xx will do).")},
        )
    )
