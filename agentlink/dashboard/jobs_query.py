"""The dashboard's job list: a status filter, a search by job id (or its prefix) or by
suburb, and pages, read from the indexes the Lua scripts keep (``stream/lua/job_status.lua``,
``index_job.lua``) without ever loading every job.

- No search: the index of every job, or of one status, newest first; a page is
  ``ZREVRANGE`` by rank (O(log N + page)), so page 2,000 of 100,000 jobs costs what page 1
  costs, and the count is ``ZCARD``.
- A job id or prefix (hex digits and dashes): ``ZRANGEBYLEX`` on the lexical index of ids.
- A suburb (optionally followed by its state): the suburbs asked for are a lexical index
  of ``<suburb>|<STATE>``; one match is listed from its own index of jobs, newest first,
  several are offered as choices.
- A search with a status filter reads the search's index in batches and keeps the jobs of
  that status, reading at most ``SCAN_LIMIT`` ids per page (then a link goes on from there).

Each page then takes one pipelined ``HMGET`` of its jobs' hashes. A job whose hash expired
may still be in an index until housekeeping drops it (``prune_jobs.lua``): it is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agentlink.api.store import JobStore
from agentlink.jobs import AuState

PAGE_SIZE = 25
SCAN_LIMIT = 5000
"""Ids a filtered search reads for one page at most."""
SUBURB_CHOICES = 20
ROW_FIELDS = (
    "job_id",
    "kind",
    "status",
    "suburb",
    "state",
    "created_at",
    "finished_at",
    "attempts",
    "consumer",
    "error",
)
_ID_LIKE = re.compile(r"^[0-9a-f][0-9a-f-]{0,35}$")
Batch = Callable[[int, int], Awaitable[list[str]]]
"""Reads ``count`` ids of an index from rank ``start`` on."""
_LEX_END = "\xff"
"""Sorts after any ASCII character: the end of a lexical prefix range."""


@dataclass(frozen=True, slots=True)
class JobQuery:
    """What the job list shows: ``status`` ("" for every one), a search ``q``, and where
    the page starts in the index searched (a rank)."""

    status: str = ""
    q: str = ""
    start: int = 0
    size: int = PAGE_SIZE


@dataclass(frozen=True, slots=True)
class JobRow:
    """One line of the job list."""

    job_id: str
    kind: str
    status: str
    suburb: str
    state: str
    created_at: str
    finished_at: str
    attempts: int
    consumer: str
    error: str


@dataclass(slots=True)
class JobsPage:
    """One page of the job list, and how to reach the next and the previous one."""

    query: JobQuery
    rows: list[JobRow] = field(default_factory=list)
    total: int | None = None
    """Jobs the query matches, when known without reading them all."""
    next_start: int | None = None
    """Where the next (older) page starts; None on the last page."""
    searched_as: str = ""
    """``id``, ``suburb`` or "" (no search)."""
    suburb: tuple[str, str] | None = None
    """The suburb and state listed, for a suburb search."""
    choices: list[tuple[str, str]] = field(default_factory=list)
    """Suburbs matching an ambiguous search, as (suburb, STATE)."""

    @property
    def prev_start(self) -> int | None:
        """Where the previous (newer) page starts; None on the first page."""
        if self.query.start <= 0:
            return None
        return max(0, self.query.start - self.query.size)


def _row(fields: list[str | None]) -> JobRow | None:
    values = dict(zip(ROW_FIELDS, fields, strict=True))
    if not values["status"] or not values["job_id"]:
        return None  # expired: the index still names it until housekeeping drops it
    attempts = values["attempts"] or "0"
    return JobRow(
        job_id=values["job_id"] or "",
        kind=values["kind"] or "",
        status=values["status"] or "",
        suburb=values["suburb"] or "",
        state=values["state"] or "",
        created_at=values["created_at"] or "",
        finished_at=values["finished_at"] or "",
        attempts=int(attempts) if attempts.isdigit() else 0,
        consumer=values["consumer"] or "",
        error=values["error"] or "",
    )


async def _rows(store: JobStore, job_ids: list[str]) -> list[JobRow | None]:
    """The list lines of ``job_ids`` (None for an expired job), in one round trip."""
    if not job_ids:
        return []

    async def read() -> list[Any]:
        pipe = store.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(store.keys.job(job_id), list(ROW_FIELDS))
        return await pipe.execute()

    return [_row(fields) for fields in await store.run(read)]


def parse_suburb(q: str) -> tuple[str, str]:
    """``"Manly Vale, NSW"`` -> ``("manly vale", "NSW")``; the state is "" when not given."""
    words = q.replace(",", " ").split()
    state = ""
    if len(words) > 1 and words[-1].upper() in AuState.__members__:
        state = words.pop().upper()
    return " ".join(words).lower(), state


async def suburbs_matching(store: JobStore, q: str) -> list[tuple[str, str]]:
    """The suburbs asked for whose name starts with the search's (and whose state is the
    search's, when it names one): (suburb as stored, lower case; STATE); exact names first."""
    name, state = parse_suburb(q)
    if not name:
        return []
    members: list[Any] = await store.run(
        lambda: store.client.zrangebylex(
            store.keys.suburbs, f"[{name}", f"({name}{_LEX_END}", start=0, num=200
        )
    )
    found = []
    for member in members:
        suburb, _, where = str(member).rpartition("|")
        if not state or where == state:
            found.append((suburb, where))
    exact = [match for match in found if match[0] == name]
    return exact + [match for match in found if match[0] != name]


async def list_jobs(store: JobStore, query: JobQuery) -> JobsPage:
    """The page ``query`` asks for (see the module docstring)."""
    q = query.q.strip()
    keys = store.keys
    if not q:
        index = keys.jobs_with_status(query.status) if query.status else keys.jobs
        return await _by_rank(store, query, index, filtered=False)
    if _ID_LIKE.match(q.lower()):
        page = await _by_id(store, query, q.lower())
        if page.rows or page.query.start > 0 or not q.isalpha():
            return page
    return await _by_suburb(store, query, q)


async def _by_rank(store: JobStore, query: JobQuery, index: str, *, filtered: bool) -> JobsPage:
    """A page of ``index`` (newest first); ``filtered``: keep only ``query.status``."""
    page = JobsPage(query=query)
    if not filtered:
        stop = query.start + query.size - 1

        async def read() -> list[Any]:
            pipe = store.client.pipeline(transaction=False)
            pipe.zcard(index)
            pipe.zrevrange(index, query.start, stop)
            return await pipe.execute()

        total, job_ids = await store.run(read)
        page.total = int(total)
        page.rows = [row for row in await _rows(store, job_ids) if row]
        page.next_start = stop + 1 if stop + 1 < page.total else None
        return page

    async def batch(start: int, count: int) -> list[str]:
        found: list[Any] = await store.run(
            lambda: store.client.zrevrange(index, start, start + count - 1)
        )
        return [str(job_id) for job_id in found]

    return await _scan(store, query, page, batch)


async def _by_id(store: JobStore, query: JobQuery, prefix: str) -> JobsPage:
    page = JobsPage(query=query, searched_as="id")
    keys = store.keys
    low, high = f"[{prefix}", f"({prefix}{_LEX_END}"

    async def batch(start: int, count: int) -> list[str]:
        found: list[Any] = await store.run(
            lambda: store.client.zrangebylex(keys.job_ids, low, high, start=start, num=count)
        )
        return [str(job_id) for job_id in found]

    if not query.status:
        page.total = int(await store.run(lambda: store.client.zlexcount(keys.job_ids, low, high)))
    return await _scan(store, query, page, batch)


async def _by_suburb(store: JobStore, query: JobQuery, q: str) -> JobsPage:
    matches = await suburbs_matching(store, q)
    name, _ = parse_suburb(q)
    exact = [match for match in matches if match[0] == name]
    chosen = exact if len(exact) == 1 else matches if len(matches) == 1 else []
    if not chosen:
        return JobsPage(
            query=query, searched_as="suburb", total=0, choices=matches[:SUBURB_CHOICES]
        )
    suburb, state = chosen[0]
    index = store.keys.jobs_of_suburb(state, suburb)
    found = await _by_rank(store, query, index, filtered=bool(query.status))
    found.searched_as, found.suburb = "suburb", (suburb, state)
    return found


async def _scan(store: JobStore, query: JobQuery, page: JobsPage, batch: Batch) -> JobsPage:
    """Read ids from ``batch(start, count)`` from ``query.start`` on, keeping live jobs of
    ``query.status`` (any, if ""), until a page is full or ``SCAN_LIMIT`` ids were read."""
    position = query.start
    chunk = max(query.size * 4, 100)
    while len(page.rows) < query.size and position - query.start < SCAN_LIMIT:
        job_ids = await batch(position, chunk)
        for row in await _rows(store, job_ids):
            position += 1
            if row and (not query.status or row.status == query.status):
                page.rows.append(row)
                if len(page.rows) == query.size:
                    break
        if len(job_ids) < chunk and len(page.rows) < query.size:
            return page  # the index ended: no next page
    page.next_start = position
    return page
