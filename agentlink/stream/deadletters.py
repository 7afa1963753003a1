"""Dead letters: list, replay and purge ``agentlink:reports:dead`` (``agentlink dlq …``), and
the callbacks given up on, ``agentlink:callbacks:dead`` (``agentlink dlq … --callbacks``).

A dead letter keeps the original entry's fields, its original id, the final error and the
job's error history. Replaying re-enqueues the same job (same job id) as a new entry and
removes the dead letter, in one script. A dead callback goes back onto the callback stream
as a first attempt, also in one script.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import msgspec

from agentlink.errors import InvalidJobError
from agentlink.jobs import AttemptError, JobEvent, decode_entry, decode_errors, restored_job_fields
from agentlink.stream.connection import call
from agentlink.stream.encoding import flatten, next_id, now_iso
from agentlink.stream.keys import Keys
from agentlink.stream.records import restore_options
from agentlink.stream.scripts import TIMELINE_CAP, Scripts

PAGE = 500
"""Dead letters read per round trip when going through all of them."""
ENTRY_FIELDS = (
    "job_id",
    "kind",
    "suburb",
    "state",
    "submitted_at",
    "v",
    "payload",
    "owner",
    "request_id",
)
"""The fields of a dead letter that go back onto the stream when it is replayed."""


class DeadLetter(msgspec.Struct):
    """One dead letter as ``agentlink dlq list --json`` prints it."""

    dead_id: str
    original_id: str
    job_id: str
    kind: str
    suburb: str
    state: str
    error: str
    deliveries: int
    dead_at: str
    errors: list[AttemptError] = msgspec.field(default_factory=list)
    """The job's error history: one record per failed attempt."""


def letter_from_fields(dead_id: str, f: dict[str, str]) -> DeadLetter:
    """A dead letter as ``XRANGE`` returns it (the CLI's and the dashboard's reading)."""
    return DeadLetter(
        dead_id=dead_id,
        original_id=f.get("original_id", ""),
        job_id=f.get("job_id", ""),
        kind=f.get("kind", ""),
        suburb=f.get("suburb", ""),
        state=f.get("state", ""),
        error=f.get("error", ""),
        deliveries=int(f.get("deliveries") or 0),
        dead_at=f.get("dead_at", ""),
        errors=decode_errors(f.get("errors")),
    )


@dataclass(frozen=True, slots=True)
class ReplayCall:
    """What ``lua/replay.lua`` is run with, for the CLI (sync) and the dashboard (async)."""

    keys: list[str]
    options: bytes


def replay_call(keys: Keys, dead_id: str, fields: dict[str, str]) -> ReplayCall:
    """The keys and options that queue the dead letter ``dead_id`` (holding ``fields``) again.

    ``InvalidJobError`` if the letter is one a consumer can never read (no job id,
    undecodable payload, unknown schema version): replaying it would only kill it again.
    """
    job_id, spec = decode_entry(fields)
    options = {
        "idx": keys.indexes,
        "dead_id": dead_id,
        "job_id": job_id,
        "entry": flatten({k: fields[k] for k in ENTRY_FIELDS if k in fields}),
        **restore_options(restored_job_fields(job_id, spec, fields, now=now_iso())),
        "event": JobEvent(event="replayed", at=now_iso(), detail=f"dead letter {dead_id}"),
        "cap": TIMELINE_CAP,
    }
    return ReplayCall(
        [keys.dead, keys.stream, keys.job(job_id), keys.index], msgspec.json.encode(options)
    )


class _DeadStream:
    """A stream of entries given up on: paging, replay of all, purge."""

    def __init__(self, client: Any, keys: Keys, stream: str) -> None:
        """``client``: a decoding client from ``agentlink.stream.connection.connect``."""
        self.client = client
        self.keys = keys
        self.stream = stream
        self.scripts = Scripts(client)

    def _rows(self, count: int, after: str, until: str) -> list[Any]:
        start = next_id(after) if after else "-"
        return list(call(lambda: self.client.xrange(self.stream, start, until, count=count)))

    def last_id(self) -> str | None:
        """The id of the newest entry (None when there is none)."""
        rows: list[Any] = call(lambda: self.client.xrevrange(self.stream, "+", "-", count=1))
        return str(rows[0][0]) if rows else None

    def replay(self, dead_id: str) -> str | None:
        """Send one entry again; the new entry id (None if there is no such entry)."""
        raise NotImplementedError

    def replay_all(self) -> list[str]:
        """Replay every replayable entry there was when it started, oldest first; returns
        the new entry ids. Entries added meanwhile (a replayed job dying again) wait for the
        next call: a job that dies at once cannot keep one replay going forever."""
        replayed: list[str] = []
        last = self.last_id()
        if last is None:
            return replayed
        after = ""
        while page := self._rows(PAGE, after, last):
            after = str(page[-1][0])
            for dead_id, _ in page:
                try:
                    new_id = self.replay(str(dead_id))
                except InvalidJobError:
                    continue
                if new_id:
                    replayed.append(new_id)
        return replayed

    def purge(self) -> int:
        """Delete every entry; returns how many there were."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xlen(self.stream)
        pipe.delete(self.stream)
        count, _ = call(pipe.execute)
        return int(count)


class DeadLetters(_DeadStream):
    """The dead-letter stream of one key prefix."""

    def __init__(self, client: Any, keys: Keys) -> None:
        """``client``: a decoding client from ``agentlink.stream.connection.connect``."""
        super().__init__(client, keys, keys.dead)

    def entries(self, count: int = 100, after: str = "", until: str = "+") -> list[DeadLetter]:
        """The oldest ``count`` dead letters (after the letter ``after``, for paging; up to
        the letter ``until``)."""
        return [letter_from_fields(dead_id, f) for dead_id, f in self._rows(count, after, until)]

    def replay(self, dead_id: str) -> str | None:
        """Re-enqueue one dead letter; returns the new entry id (None if there is no such letter).

        ``InvalidJobError`` if the letter is one a consumer can never read (no job id,
        undecodable payload, unknown schema version): replaying it would only kill it again.
        """
        rows: list[Any] = call(lambda: self.client.xrange(self.stream, dead_id, dead_id))
        if not rows:
            return None
        replay = replay_call(self.keys, dead_id, rows[0][1])
        return str(self.scripts.run("replay.lua", replay.keys, replay.options)) or None


class DeadCallback(msgspec.Struct):
    """A callback given up on (``agentlink:callbacks:dead``). Only the host of its URL is
    kept here: a Make webhook URL is a secret, its host is not."""

    dead_id: str
    job_id: str
    status: str
    host: str
    delivery: str
    error: str
    deliveries: int
    dead_at: str


def dead_callback_from_fields(dead_id: str, f: dict[str, str]) -> DeadCallback:
    """A dead callback as ``XRANGE`` returns it."""
    return DeadCallback(
        dead_id=dead_id,
        job_id=f.get("job_id", ""),
        status=f.get("status", ""),
        host=urllib.parse.urlsplit(f.get("url", "")).hostname or "",
        delivery=f.get("delivery", ""),
        error=f.get("error") or f.get("last_error", ""),
        deliveries=int(f.get("deliveries") or 0),
        dead_at=f.get("dead_at", ""),
    )


def callback_replay_call(keys: Keys, dead_id: str) -> ReplayCall:
    """The keys and options of ``lua/callback_replay.lua`` for the dead callback ``dead_id``."""
    callbacks = keys.callbacks
    return ReplayCall([callbacks.dead, callbacks.stream], msgspec.json.encode({"dead_id": dead_id}))


class DeadCallbacks(_DeadStream):
    """The callbacks given up on, of one key prefix."""

    def __init__(self, client: Any, keys: Keys) -> None:
        """``client``: a decoding client from ``agentlink.stream.connection.connect``."""
        super().__init__(client, keys, keys.callbacks.dead)

    def entries(self, count: int = 100, after: str = "", until: str = "+") -> list[DeadCallback]:
        """The oldest ``count`` dead callbacks (after ``after``, up to ``until``)."""
        rows = self._rows(count, after, until)
        return [dead_callback_from_fields(dead_id, f) for dead_id, f in rows]

    def replay(self, dead_id: str) -> str | None:
        """Send a dead callback again, as a first attempt with its delivery id; the new
        entry id on the callback stream (None if there is no such dead callback)."""
        replay = callback_replay_call(self.keys, dead_id)
        return str(self.scripts.run("callback_replay.lua", replay.keys, replay.options)) or None
