"""Every error the API returns, in one JSON shape, mapped in one place.

The body uses RFC 9457 field names (``status``, ``title``, ``detail``) plus ``errors``, a
list of ``{field, message}`` for validation problems, and is served as plain
``application/json`` so that a Make.com HTTP module parses it like any other answer.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from agentlink.errors import JobNotFoundError, ServiceBusyError, ServiceUnavailableError

log = structlog.get_logger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class FieldError(msgspec.Struct):
    """One problem with one field of a request body."""

    field: str
    message: str


class Problem(msgspec.Struct):
    """The body of every error answer (documented in the OpenAPI schema)."""

    status: int
    title: str
    detail: str
    errors: list[FieldError] = msgspec.field(default_factory=list)


class ApiError(HTTPException):
    """An error answer with an optional list of field errors."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.errors = errors or []


_AT_PATH = re.compile(r"^(?P<msg>.*) - at `\$\.?(?P<path>[^`]*)`$")
_NAMED = re.compile(r"field `(?P<field>[^`]+)`")


def field_error(exc: msgspec.ValidationError) -> FieldError:
    """Turn msgspec's message into ``{field, message}``: the field a person must fix."""
    text = str(exc)
    if match := _AT_PATH.match(text):
        path = match["path"] or "body"
        return FieldError(field=path, message=match["msg"].replace("`", ""))
    if match := _NAMED.search(text):
        return FieldError(field=match["field"], message=text.replace("`", ""))
    return FieldError(field="body", message=text.replace("`", ""))


def error_body(status: int, detail: str, errors: list[FieldError] | None = None) -> dict[str, Any]:
    """The JSON body of every error answer."""
    body: dict[str, Any] = {
        "status": status,
        "title": _TITLES.get(status, "Error"),
        "detail": detail,
    }
    if errors:
        body["errors"] = [msgspec.structs.asdict(e) for e in errors]
    return body


def exception_to_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map any exception that reaches Litestar to our error shape."""
    headers: dict[str, str] | None = None
    errors: list[FieldError] | None = None
    if isinstance(exc, ApiError):
        status, detail, errors, headers = exc.status_code, exc.detail, exc.errors, exc.headers
    elif isinstance(exc, JobNotFoundError):
        status, detail = 404, str(exc)
    elif isinstance(exc, ServiceBusyError):
        status, detail, headers = 503, str(exc), {"Retry-After": "1"}
    elif isinstance(exc, ServiceUnavailableError):
        status, detail, headers = 503, str(exc), {"Retry-After": "5"}
    elif isinstance(exc, NotFoundException):
        status, detail = 404, f"no route for {request.method} {request.url.path}"
    elif isinstance(exc, HTTPException) and exc.status_code == 413:
        limit = request.app.state.settings.max_body_bytes
        status, detail = 413, f"the request body is larger than {limit} bytes"
    elif isinstance(exc, HTTPException):
        status, detail, headers = exc.status_code, exc.detail, exc.headers
    else:
        log.error("api.unhandled_error", path=request.url.path, exc_info=exc)
        status, detail = (
            HTTP_500_INTERNAL_SERVER_ERROR,
            "internal error; the team was notified in the logs",
        )
    return Response(
        content=error_body(status, detail, errors),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
