"""One member of a consumer group: its name, what it reads, reclaims and renews.

The generic stream operations, shared by the report consumers (group ``renderers`` on
``agentlink:reports``) and the callback notifiers (group ``notifiers`` on
``agentlink:callbacks``): nothing here knows what an entry means. What a report job's
record becomes lives in ``agentlink.stream.records``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec

from agentlink.stream.connection import call, ensure_group
from agentlink.stream.encoding import next_id
from agentlink.stream.keys import Keys
from agentlink.stream.scripts import Scripts

_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Entry:
    """A stream entry handed to this member, with how often it has been delivered."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int


class GroupMember:
    """The stream as one named member of its group sees it.

    ``client`` is a decoding client from ``agentlink.stream.connection.connect``; every
    call goes through the seam's translator, so callers see only AgentLink errors.
    """

    def __init__(self, client: Any, keys: Keys, name: str) -> None:
        self.client = client
        self.keys = keys
        self.name = name
        self.scripts = Scripts(client)

    def ensure_group(self) -> None:
        """Create the group at id 0 with MKSTREAM, so nothing queued earlier is skipped."""
        ensure_group(self.client, self.keys)

    # -- the name and the heartbeat ----------------------------------------------------------

    def heartbeat(self, token: str, ttl_ms: int, **fields: str) -> bool:
        """Hold this member's name (False: another live process holds it) and beat."""
        options = {
            "token": token,
            "ttl_ms": ttl_ms,
            "now_s": int(time.time()),
            "name": self.name,
            "fields": [item for pair in fields.items() for item in pair],
        }
        keys = [self.keys.consumer(self.name), self.keys.consumers]
        return bool(self.scripts.run("claim_name.lua", keys, _json.encode(options)))

    def name_holder(self) -> dict[str, str]:
        """Who holds this member's name: token, host and pid of its last heartbeat."""
        key = self.keys.consumer(self.name)
        token, host, pid = call(lambda: self.client.hmget(key, ["token", "host", "pid"]))
        return {"token": token or "", "host": host or "", "pid": pid or ""}

    def take_over_name(self, dead_token: str) -> bool:
        """Free the name of a holder known to be dead, if it is still that holder's."""
        key = self.keys.consumer(self.name)
        return bool(self.scripts.run("take_over_name.lua", [key], dead_token))

    def release_name(self, token: str) -> bool:
        """Give the name back (only if this process holds it) and drop the heartbeat."""
        keys = [self.keys.consumer(self.name), self.keys.consumers]
        return bool(self.scripts.run("release_name.lua", keys, token, self.name))

    # -- reading -----------------------------------------------------------------------------

    def _read(self, start: str, block_ms: int | None) -> Entry | None:
        streams = {self.keys.stream: start}
        reply: Any = call(
            lambda: self.client.xreadgroup(
                self.keys.group, self.name, streams, count=1, block=block_ms
            )
        )
        if not reply or not reply[0][1]:
            return None
        entry_id, fields = reply[0][1][0]
        deliveries = 1 if start == ">" else self.deliveries(entry_id)
        return Entry(entry_id, fields or {}, deliveries)

    def read_new(self, block_ms: int) -> Entry | None:
        """The next undelivered entry (COUNT 1: no prefetch), waiting up to ``block_ms``."""
        return self._read(">", block_ms)

    def read_own_pending(self, after: str) -> Entry | None:
        """The next entry of this member's own pending list after ``after`` (``"0"``: the
        first)."""
        return self._read(after, None)

    def deliveries(self, entry_id: str) -> int:
        """How many times the entry was delivered (XPENDING extended form)."""
        rows = call(
            lambda: self.client.xpending_range(
                self.keys.stream, self.keys.group, entry_id, entry_id, 1
            )
        )
        return int(rows[0]["times_delivered"]) if rows else 0

    def reclaim(self, cursor: str, min_idle_ms: int) -> tuple[str, Entry | None, list[str]]:
        """One XAUTOCLAIM step (COUNT 1): the next cursor, the entry claimed, the ids found
        deleted (Redis removes those from the pending list and names them apart)."""
        reply: Any = call(
            lambda: self.client.execute_command(
                "XAUTOCLAIM",
                self.keys.stream,
                self.keys.group,
                self.name,
                min_idle_ms,
                cursor,
                "COUNT",
                1,
            )
        )
        next_cursor, claimed, deleted = str(reply[0]), reply[1], [str(i) for i in reply[2]]
        entry = None
        for entry_id, fields in claimed:
            entry = Entry(entry_id, fields, self.deliveries(entry_id))
        return next_cursor, entry, deleted

    # -- leases ------------------------------------------------------------------------------

    def renew(
        self,
        entry_id: str,
        *,
        idle_ms: int = 0,
        job_key: str = "",
        event: object = None,
        cap: int = 0,
        gate: bool = False,
    ) -> int:
        """Keep (or with ``idle_ms`` of a lease, hand back) the lease on our entry: 1
        renewed, 0 another member owns it, -1 deleted; 2 the job's cancel was requested, 3
        (with ``gate``) the job has an outcome already. ``event`` (a timeline event) joins
        the timeline of the job at ``job_key`` (a lease renewal folds into the last one)."""
        options = {
            "group": self.keys.group,
            "consumer": self.name,
            "entry_id": entry_id,
            "idle_ms": idle_ms,
            "event": event or {},
            "cap": cap,
            "gate": int(gate),
        }
        keys = [self.keys.stream, job_key or self.keys.job("-")]
        return int(self.scripts.run("renew.lua", keys, _json.encode(options)))

    def uptime_s(self) -> float:
        """Seconds since the Redis server started."""
        info = call(lambda: self.client.info("server"))
        return float(info.get("uptime_in_seconds", 0))

    # -- housekeeping ----------------------------------------------------------------------------

    def trim(self, retention_s: int, lock_s: int) -> int | None:
        """XTRIM MINID below every pending or undelivered entry (and the retention window).

        Runs on one member per ``lock_s``; returns the number of entries removed, or None
        when another member holds the turn.
        """

        def run() -> int | None:
            if not self.client.set(self.keys.trim_lock, self.name, nx=True, ex=lock_s):
                return None
            # Keep acked entries of the last ``retention_s`` for inspection (0: keep none).
            floor = (
                f"{int((time.time() - retention_s) * 1000)}-0"
                if retention_s
                else "18446744073709551615-0"
            )
            groups: list[dict[str, Any]] = self.client.xinfo_groups(self.keys.stream)
            if not groups:
                return 0
            for group in groups:
                summary: Any = self.client.xpending(self.keys.stream, group["name"])
                if summary["pending"]:
                    floor = min(floor, summary["min"], key=_id_key)
                floor = min(floor, next_id(group["last-delivered-id"]), key=_id_key)
            return int(self.client.xtrim(self.keys.stream, minid=floor, approximate=False))

        return call(run)

    def forget_idle_members(self, idle_ms: int, heartbeat_before_s: float) -> list[str]:
        """Delete member names that own nothing and have not beaten since the given time."""
        infos: list[dict[str, Any]] = call(
            lambda: self.client.xinfo_consumers(self.keys.stream, self.keys.group)
        )
        beats: dict[str, float] = dict(
            call(lambda: self.client.zrange(self.keys.consumers, 0, -1, withscores=True))
        )
        removed = []
        for info in infos:
            name = info["name"]
            if info["pending"] or info["idle"] < idle_ms or name == self.name:
                continue
            beat = beats.get(name)
            if beat is not None and beat >= heartbeat_before_s:
                continue
            keys = [self.keys.stream, self.keys.consumers]
            if self.scripts.run("forget_consumer.lua", keys, self.keys.group, name) == 0:
                removed.append(name)
        return removed


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
