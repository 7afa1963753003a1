"""``agentlink dlq``: list, replay or purge the dead letters."""

from __future__ import annotations

import sys

import msgspec

from agentlink.errors import InvalidJobError
from agentlink.stream.deadletters import DeadLetters


def list_letters(letters: DeadLetters, count: int, *, as_json: bool) -> int:
    """Print the dead letters, oldest first, as a table or JSON lines."""
    rows = letters.entries(count)
    if as_json:
        for row in rows:
            print(msgspec.json.encode(row).decode())
        return 0
    if not rows:
        print("no dead letters")
        return 0
    print(f"{'DEAD ID':<17} {'JOB ID':<36} {'KIND':<6} {'WHERE':<22} {'DELIV':>5}  ERROR")
    for row in rows:
        where = f"{row.suburb}, {row.state}"[:22]
        print(f"{row.dead_id:<17} {row.job_id:<36} {row.kind:<6} {where:<22} ", end="")
        print(f"{row.deliveries:>5}  {row.error}")
    return 0


def replay(letters: DeadLetters, dead_id: str | None, *, replay_all: bool) -> int:
    """Queue one dead letter (or all) again under its job id; exit 1 if it cannot be."""
    if replay_all or dead_id is None:
        print(f"replayed {len(letters.replay_all())} dead letter(s)")
        return 0
    try:
        new_id = letters.replay(dead_id)
    except InvalidJobError as exc:
        print(f"agentlink: cannot replay {dead_id}: {exc}", file=sys.stderr)
        return 1
    if new_id is None:
        print(f"agentlink: no dead letter {dead_id}", file=sys.stderr)
        return 1
    print(f"replayed {dead_id} as entry {new_id}")
    return 0


def purge(letters: DeadLetters, *, confirmed: bool) -> int:
    """Delete every dead letter, after asking unless ``confirmed``."""
    if not confirmed and input("Delete every dead letter? [y/N] ").strip().lower() != "y":
        print("nothing deleted")
        return 1
    print(f"purged {letters.purge()} dead letter(s)")
    return 0
