"""Per-request observability of the API: a request id, and counts and durations by route.

Every HTTP request gets an id: the caller's ``X-Request-ID`` when it is a sane token (what
a proxy or Make sends to correlate), else a fresh one. It is bound to the log context for
the request's lifetime, so every line the request logs carries ``request_id``, and it goes
back in the response's ``X-Request-ID`` header. ``current_request_id()`` gives it to code
that wants to store it (the job record, so consumers log it too).

Requests are counted by route *template* (``/api/job-status/{job_id:str}``), never by raw
path, so a scan of random URLs cannot explode the label set; paths that match no route are
answered by Litestar before any middleware and are not counted.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from agentlink.observe import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$")
_request_id: ContextVar[str | None] = ContextVar("agentlink_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the HTTP request being served (None outside a request)."""
    return _request_id.get()


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` if it is a plain token of up to 128 characters, else a
    new random id (a header we cannot trust must not reach logs as is)."""
    wanted = REQUEST_ID_HEADER.lower().encode()
    for name, value in scope.get("headers", []):
        if name.lower() == wanted:
            candidate = value.decode("latin-1").strip()
            if _VALID_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def observe_requests(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: request id (context, log lines, response header) and metrics."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        status = 500  # what the client gets if the app dies before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        started = time.perf_counter()
        token = _request_id.set(request_id)
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            metrics.HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            metrics.HTTP_SECONDS.labels(route=route, method=method).observe(
                time.perf_counter() - started
            )

    return middleware
