"""``agentlink dlq``: list, replay or purge the dead letters, or (``--callbacks``) the
callbacks given up on."""

from __future__ import annotations

import sys

import msgspec

from agentlink.errors import InvalidJobError
from agentlink.stream.deadletters import DeadCallback, DeadCallbacks, DeadLetter, DeadLetters


def _noun(letters: DeadLetters | DeadCallbacks) -> str:
    return "dead callback" if isinstance(letters, DeadCallbacks) else "dead letter"


def list_letters(letters: DeadLetters | DeadCallbacks, count: int, *, as_json: bool) -> int:
    """Print the dead letters (or callbacks), oldest first, as a table or JSON lines."""
    rows = letters.entries(count)
    if as_json:
        for row in rows:
            print(msgspec.json.encode(row).decode())
        return 0
    if not rows:
        print(f"no {_noun(letters)}s")
        return 0
    if isinstance(letters, DeadCallbacks):
        print(f"{'DEAD ID':<17} {'JOB ID':<36} {'STATUS':<9} {'HOST':<22} {'DELIV':>5}  ERROR")
    else:
        print(f"{'DEAD ID':<17} {'JOB ID':<36} {'KIND':<6} {'WHERE':<22} {'DELIV':>5}  ERROR")
    for row in rows:
        print(_row(row))
    return 0


def _row(row: DeadLetter | DeadCallback) -> str:
    if isinstance(row, DeadCallback):
        head = f"{row.dead_id:<17} {row.job_id:<36} {row.status:<9} {row.host[:22]:<22}"
    else:
        where = f"{row.suburb}, {row.state}"[:22]
        head = f"{row.dead_id:<17} {row.job_id:<36} {row.kind:<6} {where:<22}"
    return f"{head} {row.deliveries:>5}  {row.error}"


def replay(letters: DeadLetters | DeadCallbacks, dead_id: str | None, *, replay_all: bool) -> int:
    """Queue one dead letter (or all) again under its job id, or send one dead callback (or
    all) again; exit 1 if it cannot be."""
    noun = _noun(letters)
    if replay_all or dead_id is None:
        print(f"replayed {len(letters.replay_all())} {noun}(s)")
        return 0
    try:
        new_id = letters.replay(dead_id)
    except InvalidJobError as exc:
        print(f"agentlink: cannot replay {dead_id}: {exc}", file=sys.stderr)
        return 1
    if new_id is None:
        print(f"agentlink: no {noun} {dead_id}", file=sys.stderr)
        return 1
    print(f"replayed {dead_id} as entry {new_id}")
    return 0


def purge(letters: DeadLetters | DeadCallbacks, *, confirmed: bool) -> int:
    """Delete every dead letter (or callback), after asking unless ``confirmed``."""
    noun = _noun(letters)
    if not confirmed and input(f"Delete every {noun}? [y/N] ").strip().lower() != "y":
        print("nothing deleted")
        return 1
    print(f"purged {letters.purge()} {noun}(s)")
    return 0
