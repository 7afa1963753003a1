"""Idempotency keys: Make re-sends a request after a timeout, a repeat must not queue twice.

The key comes from the ``Idempotency-Key`` header, or the body's ``request_id``. It is
scoped per tenant (a digest of the API key) and per report kind, and stored as its SHA-256,
so any printable text up to 255 characters works and nothing secret lands in key names.
The enqueue script records key → job id + body hash in the same step that queues the job
(``agentlink/stream/lua/submit.lua``): of any number of concurrent requests with one key,
exactly one queues. A repeat with the same body gets the same job back (200); the same key
with another body is a 409. Records expire after ``AGENTLINK_IDEMPOTENCY_TTL_S``.
"""

from __future__ import annotations

import hashlib

import msgspec

from agentlink.api.errors import ApiError, FieldError
from agentlink.api.submission import IdempotencyKey
from agentlink.jobs import ReportSpec
from agentlink.stream.keys import Keys

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def choose_key(header: str | None, request_id: str | None) -> tuple[str, str] | None:
    """The request's idempotency key and where it came from (the header wins over
    ``request_id``); 422 if unusable."""
    if header is not None:
        key, field = header.strip(), HEADER
    elif request_id is not None:
        key, field = request_id.strip(), "request_id"
    else:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            422,
            "the idempotency key is unusable",
            errors=[
                FieldError(
                    field, f"must be 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID"
                )
            ],
        )
    return key, field


def body_sha256(spec: ReportSpec) -> str:
    """The hash that tells "the same request again" from "another request with this key":
    over the validated, normalised request, so `"nsw"` and `"NSW"`, or JSON and a form with
    the same fields, are the same request."""
    return hashlib.sha256(msgspec.json.encode(spec)).hexdigest()


def idempotency_key(
    keys: Keys, scope: str, spec: ReportSpec, key: str, ttl_s: int
) -> IdempotencyKey:
    """Where ``key`` of tenant ``scope`` is recorded for this kind of report."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return IdempotencyKey(
        redis_key=keys.idempotency(scope, spec.kind.value, digest),
        body_sha256=body_sha256(spec),
        ttl_s=ttl_s,
    )


def conflict(key: str, field: str, job_id: str, ttl_s: int) -> ApiError:
    """409: the key was used for a different request."""
    hours = ttl_s / 3600
    return ApiError(
        409,
        f"this idempotency key was already used for a different request (job {job_id}) "
        f"within the last {hours:g} h; send the original body to get that job back, or a "
        "new key for a new request",
        errors=[FieldError(field, f"{key!r} belongs to another request body")],
    )
