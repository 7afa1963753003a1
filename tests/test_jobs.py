"""The job hash read back as a record: every field, absent ones, and hashes that cannot be."""

from __future__ import annotations

from datetime import date

import pytest

from agentlink.errors import JobRecordError
from agentlink.jobs import (
    AuState,
    JobResult,
    Kind,
    ReportSpec,
    Status,
    new_job_fields,
    record_from_hash,
    result_fields,
)

SPEC = ReportSpec(
    kind=Kind.AGENCY,
    suburb="Manly",
    state=AuState.NSW,
    period_months=6,
    period_end=date(2026, 10, 31),
    callback_url="https://hook.eu1.make.com/abc",
)


def job_hash(**changes: str) -> dict[str, str]:
    """The hash the API writes for SPEC, with ``changes`` applied."""
    fields = new_job_fields(
        "job-1", SPEC, "2026-11-26T13:40:00.123+00:00", request_id="r-1", owner="digest"
    )
    return {**fields, **changes}


class TestRecordFromHash:
    """A job hash, as the API and the consumers write it, read back as a record."""

    def test_a_new_job(self) -> None:
        """The hash of an accepted job: its fields, no result, callback and owner left out."""
        record = record_from_hash(job_hash())
        assert (record.job_id, record.kind, record.status) == ("job-1", Kind.AGENCY, Status.QUEUED)
        assert (record.suburb, record.state) == ("Manly", AuState.NSW)
        assert (record.period_months, record.period_end) == (6, date(2026, 10, 31))
        assert (record.request_id, record.attempts, record.result) == ("r-1", 0, None)
        assert [event.event for event in record.events] == ["accepted"]

    def test_a_finished_job_with_its_result(self) -> None:
        """Numbers come back as numbers, an empty result URL as None."""
        result = JobResult(storage="local", path="NSW/Manly/a.pdf", bytes=37017, pages=3)
        fields = job_hash(status="completed", attempts="2", consumer="w-1", **result_fields(result))
        record = record_from_hash(fields)
        assert record.status == Status.COMPLETED
        assert (record.attempts, record.consumer) == (2, "w-1")
        assert record.result == result

    def test_empty_fields_count_as_absent(self) -> None:
        """ "" for an optional field is its default: no period end, 12 months, no error."""
        record = record_from_hash(job_hash(period_end="", period_months="", error=""))
        assert (record.period_end, record.period_months, record.error) == (None, 12, None)

    @pytest.mark.parametrize("missing", ["job_id", "kind", "status", "suburb", "created_at"])
    def test_a_missing_field_is_named(self, missing: str) -> None:
        """A hash without a field every record has fails naming it (not a KeyError)."""
        fields = job_hash()
        del fields[missing]
        with pytest.raises(JobRecordError, match=f"missing required field `{missing}`"):
            record_from_hash(fields)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("kind", "poster"), ("attempts", "many"), ("period_end", "31/10/2026"), ("state", "X")],
    )
    def test_a_malformed_field_is_named(self, field: str, value: str) -> None:
        """A value that does not parse fails naming the field and the job."""
        with pytest.raises(JobRecordError, match=rf"job job-1 .*`\$\.{field}`"):
            record_from_hash(job_hash(**{field: value}))

    def test_the_error_is_a_value_error(self) -> None:
        """Callers that handle unreadable data as ValueError keep doing so."""
        with pytest.raises(ValueError, match="unreadable"):
            record_from_hash({"status": "completed"})
