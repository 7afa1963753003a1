"""The records that cross a boundary: report requests, stream entries and job records.

Each is a ``msgspec.Struct`` validated where it enters (HTTP body, stream entry, job hash),
so a bad value fails at decode time with a message that names the field.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import msgspec

from agentlink.errors import InvalidJobError, JobRecordError

SCHEMA_VERSION = 1
"""Version of the stream entry layout (field ``v``); consumers refuse other versions."""


class Kind(enum.StrEnum):
    """What a report ranks."""

    AGENTS = "agents"
    AGENCY = "agency"


class AuState(enum.StrEnum):
    """The eight Australian states and territories."""

    NSW = "NSW"
    VIC = "VIC"
    QLD = "QLD"
    SA = "SA"
    WA = "WA"
    TAS = "TAS"
    ACT = "ACT"
    NT = "NT"


class Status(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    PROCESSING = "processing"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True once the job will not change any more (until a replay); the scripts hold
        the same list (``stream/lua/job_status.lua``)."""
        return self in {Status.COMPLETED, Status.FAILED, Status.DEAD, Status.CANCELLED}


Suburb = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
PeriodMonths = Annotated[int, msgspec.Meta(ge=1, le=60)]
CallbackUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Highlight = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]


PERIOD_END_FLOOR = date(2000, 1, 1)
"""The earliest ``period_end`` a request may ask for: no sales data reaches further back."""
PERIOD_END_HORIZON_DAYS = 366
"""How far ahead of today ``period_end`` may lie (a period may end after today's sales)."""


def period_end_problem(period_end: date | None, *, today: date | None = None) -> str | None:
    """Why ``period_end`` is no date a report can be made for (None if it is fine).

    The range is checked where requests come in, so a date the reports cannot handle
    (``0001-01-01``) is a 422 naming the field rather than a job failing later.
    """
    if period_end is None:
        return None
    latest = (today or datetime.now(UTC).date()) + timedelta(days=PERIOD_END_HORIZON_DAYS)
    if period_end < PERIOD_END_FLOOR:
        return f"must be {PERIOD_END_FLOOR.isoformat()} or later, got {period_end.isoformat()}"
    if period_end > latest:
        return (
            f"must be at most a year ahead ({latest.isoformat()} or earlier), "
            f"got {period_end.isoformat()}"
        )
    return None


class ReportRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of ``POST /api/generate-agents-report`` and ``/api/generate-agency-report``."""

    suburb: Suburb
    state: str
    period_months: PeriodMonths = 12
    period_end: date | None = None
    # Where to POST the job record once it is finished (checked by agentlink.callbacks).
    callback_url: CallbackUrl | None = None
    # The client's idempotency key, when it sends none in the Idempotency-Key header.
    request_id: RequestId | None = None
    # The requesting agent (agents report) or agency (agency report), matched without
    # regard to case: its row is highlighted and a profile follows the ranking.
    highlight: Highlight | None = None


class ReportSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A validated, normalised request: what a consumer needs to make the report."""

    kind: Kind
    suburb: str
    state: AuState
    period_months: int = 12
    period_end: date | None = None
    callback_url: str | None = None
    # UNSET (not None) when absent: the encoded spec, and so the stream entry and the
    # idempotency hash of a request without a highlight, stay what they were before it.
    highlight: str | msgspec.UnsetType = msgspec.UNSET


class JobResult(msgspec.Struct, kw_only=True):
    """Where a finished report went."""

    storage: str
    path: str
    url: str | None = None
    bytes: int = 0
    pages: int = 0
    rev: str | None = None


class AttemptError(msgspec.Struct, kw_only=True):
    """One failed attempt, kept in the job's error history."""

    attempt: int
    at: str
    consumer: str
    error: str
    transient: bool


class JobEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One step in a job's timeline: accepted, claimed, renewed, reclaimed, retrying, …

    Consumers append them to the job hash's ``events`` field (a JSON array, so it expires
    with the job); ``accepted`` is not stored but derived from ``created_at``.
    """

    event: str
    at: str
    consumer: str | None = None
    attempt: int | None = None
    deliveries: int | None = None
    count: int | None = None
    """How many lease renewals one ``renewed`` event stands for (consecutive ones fold)."""
    seconds: float | None = None
    detail: str | None = None
    request_id: str | None = None


class JobRecord(msgspec.Struct, kw_only=True):
    """A job's status record: the job hash, as ``GET /api/job-status/{job_id}`` returns it."""

    job_id: str
    kind: Kind
    status: Status
    suburb: str
    state: AuState
    period_months: int = 12
    period_end: date | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    consumer: str | None = None
    error: str | None = None
    cancel_requested: str | None = None
    """When a cancel was asked for while the job was being made (its consumer then stops)."""
    result: JobResult | None = None
    errors: list[AttemptError] = msgspec.field(default_factory=list)
    events: list[JobEvent] = msgspec.field(default_factory=list)


_errors_decoder = msgspec.json.Decoder(list[AttemptError])
_events_decoder = msgspec.json.Decoder(list[JobEvent])
_event_encoder = msgspec.json.Encoder()
_spec_decoder = msgspec.json.Decoder(ReportSpec)


def entry_fields(
    job_id: str,
    spec: ReportSpec,
    submitted_at: str,
    *,
    owner: str | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """The flat, human-readable fields of a stream entry (``XRANGE`` shows them as is).

    ``owner`` (the digest of the creating API key) and ``request_id`` travel with the entry,
    and so into its dead letter: a job whose record expired is rebuilt from them
    (``restored_job_fields``) as its owner's, not as everyone's.
    """
    fields = {
        "job_id": job_id,
        "kind": spec.kind.value,
        "suburb": spec.suburb,
        "state": spec.state.value,
        "submitted_at": submitted_at,
        "v": str(SCHEMA_VERSION),
        "payload": msgspec.json.encode(spec).decode(),
    }
    if owner:
        fields["owner"] = owner
    if request_id:
        fields["request_id"] = request_id
    return fields


def decode_entry(fields: dict[str, str]) -> tuple[str, ReportSpec]:
    """The job id and spec of a stream entry; ``InvalidJobError`` if it cannot be read."""
    job_id = fields.get("job_id", "")
    if not job_id:
        raise InvalidJobError("stream entry has no job_id")
    version = fields.get("v", "")
    if version != str(SCHEMA_VERSION):
        raise InvalidJobError(
            f"unknown entry schema version {version!r} (expected {SCHEMA_VERSION})"
        )
    try:
        spec = _spec_decoder.decode(fields.get("payload", ""))
    except msgspec.DecodeError as exc:
        raise InvalidJobError(f"undecodable payload: {exc}") from exc
    return job_id, spec


def new_job_fields(
    job_id: str,
    spec: ReportSpec,
    created_at: str,
    *,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    owner: str | None = None,
) -> dict[str, str]:
    """The job hash of a job just accepted (``callback_url`` is read by the outcome scripts;
    ``owner``, a digest of the creating API key, decides who may read it; with ``highlight``
    the hash holds the whole spec, so the job can be made again: ``spec_from_hash``)."""
    fields = {
        "job_id": job_id,
        "kind": spec.kind.value,
        "status": Status.QUEUED.value,
        "suburb": spec.suburb,
        "state": spec.state.value,
        "period_months": str(spec.period_months),
        "period_end": spec.period_end.isoformat() if spec.period_end else "",
        "created_at": created_at,
        "created_ms": str(int(datetime.fromisoformat(created_at).timestamp() * 1000)),
        "attempts": "0",
    }
    if spec.callback_url:
        fields["callback_url"] = spec.callback_url
    if spec.highlight:
        fields["highlight"] = spec.highlight
    if request_id:
        fields["request_id"] = request_id
    if idempotency_key:
        fields["idempotency_key"] = idempotency_key
    if owner:
        fields["owner"] = owner
    return fields


def restored_job_fields(
    job_id: str, spec: ReportSpec, entry: dict[str, str], *, now: str
) -> dict[str, str]:
    """The job hash to rebuild from a stream entry (or its dead letter) when the job's record
    is gone: ``new_job_fields`` with the entry's submission time (``now`` if it has none),
    owner and request id, and without a status, which the scripts set with its indexes."""
    fields = new_job_fields(
        job_id,
        spec,
        entry.get("submitted_at") or now,
        request_id=entry.get("request_id") or None,
        owner=entry.get("owner") or None,
    )
    del fields["status"]
    return fields


def spec_from_hash(fields: dict[str, str]) -> ReportSpec:
    """The spec a job hash was made from (``new_job_fields``), to run the job again;
    ``JobRecordError`` if the hash lacks what a spec needs."""
    spec: dict[str, Any] = {
        name: fields[name]
        for name in ("kind", "suburb", "state", "period_months", "period_end", "callback_url")
        if fields.get(name)
    }
    if fields.get("highlight"):
        spec["highlight"] = fields["highlight"]
    try:
        return msgspec.convert(spec, ReportSpec, strict=False)
    except msgspec.ValidationError as exc:
        job = fields.get("job_id") or "?"
        raise JobRecordError(f"job {job} cannot be run again: {exc}") from exc


def result_fields(result: JobResult) -> dict[str, str]:
    """A result as flat ``result_*`` hash fields."""
    return {
        "result_storage": result.storage,
        "result_path": result.path,
        "result_url": result.url or "",
        "result_bytes": str(result.bytes),
        "result_pages": str(result.pages),
        "result_rev": result.rev or "",
    }


def encode_errors(errors: list[AttemptError]) -> str:
    """The error history as the JSON kept in the job hash's ``errors`` field."""
    return msgspec.json.encode(errors).decode()


def encode_event(event: JobEvent) -> str:
    """One timeline event as the JSON the timeline script appends."""
    return _event_encoder.encode(event).decode()


def timeline(fields: dict[str, str]) -> list[JobEvent]:
    """The job's events, oldest first: ``accepted`` (from the hash), then the stored ones."""
    accepted = JobEvent(
        event="accepted",
        at=fields.get("created_at", ""),
        request_id=fields.get("request_id") or None,
    )
    raw = fields.get("events")
    if not raw:
        return [accepted]
    try:
        return [accepted, *_events_decoder.decode(raw)]
    except msgspec.DecodeError:
        return [accepted]


def decode_errors(raw: str | None) -> list[AttemptError]:
    """The error history from the job hash (empty if absent or unreadable)."""
    if not raw:
        return []
    try:
        return _errors_decoder.decode(raw)
    except msgspec.DecodeError:
        return []


_LISTS = ("errors", "events")
"""Hash fields holding JSON arrays, decoded leniently (``decode_errors``, ``timeline``)."""
_RESULT = "result_"


def record_from_hash(fields: dict[str, str]) -> JobRecord:
    """Rebuild a ``JobRecord`` from the flat job hash (``new_job_fields``, ``result_fields``
    and the consumers' writes): an empty field counts as absent, fields a record does not
    show (``callback_url``, ``owner``) are passed over.

    ``JobRecordError`` names the field when one a record needs is missing or malformed.
    """
    flat: dict[str, Any] = {
        name: value for name, value in fields.items() if value != "" and name not in _LISTS
    }
    result = {
        name.removeprefix(_RESULT): flat.pop(name)
        for name in list(flat)
        if name.startswith(_RESULT)
    }
    flat["result"] = result if "path" in result else None
    try:
        record = msgspec.convert(flat, JobRecord, strict=False)
    except msgspec.ValidationError as exc:
        job = fields.get("job_id") or "?"
        raise JobRecordError(f"the record of job {job} is unreadable: {exc}") from exc
    record.errors = decode_errors(fields.get("errors"))
    record.events = timeline(fields)
    return record
