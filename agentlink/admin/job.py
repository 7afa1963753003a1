"""``agentlink job`` and ``agentlink cancel``: one job, found by its id or a unique prefix of
it: its status record, or its cancellation."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from agentlink.errors import StorageRejectedError
from agentlink.jobs import JobRecord, record_from_hash
from agentlink.settings import Settings
from agentlink.storage.local import LocalStorage
from agentlink.stream.keys import Keys
from agentlink.stream.records import cancel_call
from agentlink.stream.scripts import Scripts

JOB_PREFIX_MIN_CHARS = 8
"""The shortest job id prefix ``agentlink job`` looks up: what inspect and file names show."""


def job_ids_matching(client: Any, keys: Keys, given: str, *, limit: int = 5) -> list[str]:
    """The job ``given`` names: its full id, else the ids that start with it (given at least
    ``JOB_PREFIX_MIN_CHARS`` characters), sorted; more than ``limit`` means "many".

    A prefix is looked up in the lexical index of job ids (``ZRANGE … BYLEX``, the index the
    dashboard searches): three round trips whatever the number of jobs. Ids whose job has
    expired (the index is pruned a while later) are left out.
    """
    if client.hexists(keys.job(given), "status"):
        return [given]
    if len(given) < JOB_PREFIX_MIN_CHARS:
        return []
    indexed = client.zrangebylex(keys.job_ids, f"[{given}", f"({given}\xff", start=0, num=100)
    pipe = client.pipeline(transaction=False)
    for job_id in indexed:
        pipe.hexists(keys.job(job_id), "status")
    alive = pipe.execute() if indexed else []
    found = [job_id for job_id, exists in zip(indexed, alive, strict=True) if exists]
    return sorted(found)[: limit + 1]


def _one_job(client: Any, keys: Keys, given: str) -> tuple[str, dict[str, str]] | None:
    """The id and hash of the one job ``given`` names; None (the problem printed) if there
    is no such job, or several."""
    found = job_ids_matching(client, keys, given)
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        print(
            f"agentlink: {given} starts several job ids ({shown}); give more of it", file=sys.stderr
        )
        return None
    fields: dict[str, str] = client.hgetall(keys.job(found[0])) if found else {}
    if not fields.get("status"):
        hint = (
            ""
            if len(given) >= JOB_PREFIX_MIN_CHARS
            else f"; give the full id or at least its first {JOB_PREFIX_MIN_CHARS} characters"
        )
        print(f"agentlink: no job {given} (unknown or expired{hint})", file=sys.stderr)
        return None
    return found[0], fields


def show_job(client: Any, keys: Keys, settings: Settings, given: str) -> int:
    """Print the record of the job ``given`` (its id, or a unique prefix) as JSON; exit 1
    naming the problem if there is no such job, or several."""
    found = _one_job(client, keys, given)
    if found is None:
        return 1
    record = record_from_hash(found[1])
    _show_local_pdf(record, settings)
    print(msgspec.json.format(msgspec.json.encode(record)).decode())
    return 0


def cancel_job(client: Any, keys: Keys, settings: Settings, given: str) -> int:
    """Cancel the job ``given`` names (``lua/cancel.lua``) and say what happens next; exit 1
    if there is no such job, or it is finished already."""
    found = _one_job(client, keys, given)
    if found is None:
        return 1
    job_id = found[0]
    call = cancel_call(keys, job_id, owner="", ttl_s=settings.job_ttl_s, by="agentlink cancel")
    verdict, status = Scripts(client).run("cancel.lua", call.keys, call.options)
    if verdict == "missing":
        print(f"agentlink: no job {job_id} (it expired meanwhile)", file=sys.stderr)
        return 1
    if verdict == "finished":
        print(f"agentlink: job {job_id} is {status} already; nothing to cancel", file=sys.stderr)
        return 1
    if verdict == "cancelled":
        print(f"cancelled job {job_id}: it was queued and will never be made")
    else:
        print(
            f"cancel requested for job {job_id} ({status}): its worker stops within "
            f"{settings.lease_s / 3:g} s and records it cancelled, storing nothing, unless "
            "its report is rendered already (then it completes)"
        )
    return 0


def _show_local_pdf(record: JobRecord, settings: Settings) -> None:
    """Fill ``result.url`` of a local-storage job with its file's ``file://`` URI.

    The API fills it at read time with its own public ``/api/jobs/{id}/pdf`` address, which
    depends on how the caller reached it (Host, scheme behind nginx), so it is not stored
    and the CLI cannot know it. What the CLI knows is the file in AGENTLINK_OUTPUT_DIR.
    """
    result = record.result
    if result is None or result.url or result.storage != "local":
        return
    try:
        pdf = LocalStorage(settings.output_dir).resolve(result.path)
    except StorageRejectedError:
        return
    if pdf.is_file():
        result.url = pdf.as_uri()
    else:
        print(f"agentlink: the PDF is not at {pdf} on this machine", file=sys.stderr)
