"""What the dashboard's buttons do: cancel a job, make a finished one again as a new job,
and queue dead letters (of reports or of callbacks) again, one or all.

Each is the script the CLI and the API run, with options built by the same function
(``records.cancel_call``, ``deadletters.replay_call``, ``deadletters.callback_replay_call``),
so the dashboard cannot drift from them. Replaying every dead letter (or dead callback) goes
a page at a time, the page's scripts pipelined: 10,000 letters are 40 round trips, never
one list in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from agentlink.api.store import JobStore
from agentlink.api.submission import Accepted
from agentlink.dashboard.reads import job_hash
from agentlink.errors import InvalidJobError, JobNotFoundError
from agentlink.jobs import JobEvent, Status, spec_from_hash
from agentlink.stream.deadletters import ReplayCall, callback_replay_call, replay_call
from agentlink.stream.encoding import next_id, now_iso
from agentlink.stream.lua import source
from agentlink.stream.scripts import TIMELINE_CAP

BY = "an operator (dashboard)"
"""Who the timeline says cancelled a job from here."""
REPLAY_PAGE = 250
"""Dead letters replayed per round trip by "replay all"."""


@dataclass(frozen=True, slots=True)
class Cancelled:
    """What a cancel did: ``cancelled`` (it was queued), ``requested`` (its consumer stops
    it), ``finished`` (nothing to do: ``status`` says how it ended) or ``missing``."""

    verdict: str
    status: str


async def cancel(store: JobStore, job_id: str, *, ttl_s: int) -> Cancelled:
    """Cancel ``job_id`` as an operator (``lua/cancel.lua``)."""
    verdict, status = await store.cancel(job_id, owner="", ttl_s=ttl_s, by=BY)
    return Cancelled(verdict, status)


async def _note(store: JobStore, job_id: str, event: JobEvent) -> None:
    """Add ``event`` to the job's timeline (``lua/event.lua``)."""
    script = store.client.register_script(source("event.lua"))
    options = msgspec.json.encode({"event": event, "cap": TIMELINE_CAP, "fold": 0})
    await store.run(lambda: script(keys=[store.keys.job(job_id)], args=[options]))


async def rerun(store: JobStore, job_id: str) -> str:
    """Queue a finished job's spec again as a new job, owned by the same API key (so it can
    read the new one); both timelines name the other job. Returns the new job's id.

    ``JobNotFoundError`` for no such job; ``InvalidJobError`` while it is not finished.
    """
    fields = await job_hash(store, job_id)
    if not fields.get("status"):
        raise JobNotFoundError(job_id)
    if not Status(fields["status"]).finished:
        raise InvalidJobError(f"job {job_id} is {fields['status']}: only a finished job runs again")
    accepted = await store.enqueue(spec_from_hash(fields), owner=fields.get("owner") or None)
    if not isinstance(accepted, Accepted):  # no idempotency key, limit or backpressure given
        raise InvalidJobError(f"job {job_id} could not be queued again")
    now = now_iso()
    await _note(store, job_id, JobEvent(event="rerun", at=now, detail=f"as job {accepted.job_id}"))
    await _note(store, accepted.job_id, JobEvent(event="rerun", at=now, detail=f"of job {job_id}"))
    return accepted.job_id


async def _run(store: JobStore, name: str, call: ReplayCall) -> str:
    script = store.client.register_script(source(name))
    return str(await store.run(lambda: script(keys=call.keys, args=[call.options])))


async def replay(store: JobStore, dead_id: str) -> str | None:
    """Queue one dead letter again (same job id); the new entry id, None if there is no such
    letter. ``InvalidJobError`` for a letter no consumer can read."""
    rows: Any = await store.run(lambda: store.client.xrange(store.keys.dead, dead_id, dead_id))
    if not rows:
        return None
    return await _run(store, "replay.lua", replay_call(store.keys, dead_id, rows[0][1])) or None


@dataclass(frozen=True, slots=True)
class ReplayedAll:
    """What "replay all" did."""

    replayed: int
    unreadable: int
    """Letters left in place: no consumer could ever read them."""


async def _page_after(store: JobStore, dead: str, after: str, until: str) -> list[Any]:
    """The oldest ``REPLAY_PAGE`` entries of ``dead`` after ``after``, up to ``until``."""
    start = next_id(after) if after else "-"
    rows: Any = await store.run(lambda: store.client.xrange(dead, start, until, count=REPLAY_PAGE))
    return list(rows)


async def _replay_every(
    store: JobStore, dead: str, script_name: str, call_of: Callable[[str, Any], ReplayCall]
) -> ReplayedAll:
    """Run ``script_name`` for every entry ``dead`` held when this started, oldest first, a
    page per round trip; entries added meanwhile (a replayed job dying again) wait for the
    next time. ``call_of`` raising ``InvalidJobError`` leaves an entry where it is."""
    script = store.client.register_script(source(script_name))
    replayed = unreadable = 0
    newest: Any = await store.run(lambda: store.client.xrevrange(dead, "+", "-", count=1))
    if not newest:
        return ReplayedAll(replayed, unreadable)
    until = str(newest[0][0])
    after = ""
    while True:
        rows = await _page_after(store, dead, after, until)
        if not rows:
            return ReplayedAll(replayed, unreadable)
        after = str(rows[-1][0])
        calls = []
        for dead_id, fields in rows:
            try:
                calls.append(call_of(str(dead_id), fields))
            except InvalidJobError:
                unreadable += 1

        async def run_page(calls: list[ReplayCall] = calls) -> list[Any]:
            pipe = store.client.pipeline(transaction=False)
            for call in calls:
                await script(keys=call.keys, args=[call.options], client=pipe)
            return await pipe.execute()

        replayed += sum(1 for new_id in await store.run(run_page) if new_id)


async def replay_all(store: JobStore) -> ReplayedAll:
    """Queue every dead letter there was when it started again (``lua/replay.lua``)."""
    return await _replay_every(
        store,
        store.keys.dead,
        "replay.lua",
        lambda dead_id, fields: replay_call(store.keys, dead_id, fields),
    )


async def replay_all_callbacks(store: JobStore) -> ReplayedAll:
    """Send every dead callback there was when it started again
    (``lua/callback_replay.lua``)."""
    return await _replay_every(
        store,
        store.keys.callbacks.dead,
        "callback_replay.lua",
        lambda dead_id, _: callback_replay_call(store.keys, dead_id),
    )


async def replay_callback(store: JobStore, dead_id: str) -> str | None:
    """Send a dead callback again (back onto the callback stream as a first attempt); the
    new entry id, None if there is no such dead callback."""
    return (
        await _run(store, "callback_replay.lua", callback_replay_call(store.keys, dead_id)) or None
    )
