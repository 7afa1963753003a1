"""Dead letters: list, replay and purge ``agentlink:reports:dead`` (``agentlink dlq …``).

A dead letter keeps the original entry's fields, its original id, the final error and the
job's error history. Replaying re-enqueues the same job (same job id) as a new entry and
removes the dead letter, in one script.
"""

from __future__ import annotations

from typing import Any

import msgspec

from agentlink.errors import InvalidJobError
from agentlink.jobs import JobEvent, decode_entry, new_job_fields
from agentlink.stream.connection import call
from agentlink.stream.encoding import flatten, next_id, now_iso
from agentlink.stream.keys import Keys
from agentlink.stream.scripts import TIMELINE_CAP, Scripts

PAGE = 500
"""Dead letters read per round trip when going through all of them."""
ENTRY_FIELDS = ("job_id", "kind", "suburb", "state", "submitted_at", "v", "payload")


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


class DeadLetters:
    """The dead-letter stream of one key prefix."""

    def __init__(self, client: Any, keys: Keys) -> None:
        """``client``: a decoding client from ``agentlink.stream.connection.connect``."""
        self.client = client
        self.keys = keys
        self.scripts = Scripts(client)

    def entries(self, count: int = 100, after: str = "") -> list[DeadLetter]:
        """The oldest ``count`` dead letters (after the letter ``after``, for paging)."""
        start = next_id(after) if after else "-"
        rows: list[Any] = call(lambda: self.client.xrange(self.keys.dead, start, "+", count=count))
        return [
            DeadLetter(
                dead_id=dead_id,
                original_id=f.get("original_id", ""),
                job_id=f.get("job_id", ""),
                kind=f.get("kind", ""),
                suburb=f.get("suburb", ""),
                state=f.get("state", ""),
                error=f.get("error", ""),
                deliveries=int(f.get("deliveries") or 0),
                dead_at=f.get("dead_at", ""),
            )
            for dead_id, f in rows
        ]

    def replay(self, dead_id: str) -> str | None:
        """Re-enqueue one dead letter; returns the new entry id (None if there is no such letter).

        ``InvalidJobError`` if the letter is one a consumer can never read (no job id,
        undecodable payload, unknown schema version): replaying it would only kill it again.
        """
        rows: list[Any] = call(lambda: self.client.xrange(self.keys.dead, dead_id, dead_id))
        if not rows:
            return None
        fields: dict[str, str] = rows[0][1]
        job_id, spec = decode_entry(fields)
        options = {
            "idx": self.keys.indexes,
            "dead_id": dead_id,
            "job_id": job_id,
            "entry": flatten({k: fields[k] for k in ENTRY_FIELDS if k in fields}),
            "restore": flatten(
                new_job_fields(job_id, spec, fields.get("submitted_at") or now_iso())
            ),
            "event": JobEvent(event="replayed", at=now_iso(), detail=f"dead letter {dead_id}"),
            "cap": TIMELINE_CAP,
        }
        keys = [self.keys.dead, self.keys.stream, self.keys.job(job_id), self.keys.index]
        return str(self.scripts.run("replay.lua", keys, msgspec.json.encode(options))) or None

    def replay_all(self) -> list[str]:
        """Replay every replayable dead letter, oldest first; returns the new entry ids."""
        replayed: list[str] = []
        after = ""
        while page := self.entries(count=PAGE, after=after):
            after = page[-1].dead_id
            for letter in page:
                try:
                    new_id = self.replay(letter.dead_id)
                except InvalidJobError:
                    continue
                if new_id:
                    replayed.append(new_id)
        return replayed

    def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xlen(self.keys.dead)
        pipe.delete(self.keys.dead)
        count, _ = call(pipe.execute)
        return int(count)
