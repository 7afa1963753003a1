"""How values are written to Redis: timestamps, field/value lists, stream entry ids."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, the format of every timestamp."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def entry_time_s(entry_id: str) -> float:
    """The unix time (seconds) encoded in a stream entry id."""
    return int(entry_id.split("-", 1)[0]) / 1000


def flatten(fields: dict[str, str]) -> list[str]:
    """``{"a": "1"}`` -> ``["a", "1"]``: the argument layout of XADD and HSET."""
    return [item for pair in fields.items() for item in pair]


def next_id(entry_id: str) -> str:
    """The smallest stream id greater than ``entry_id``."""
    ms, seq = entry_id.split("-", 1)
    return f"{ms}-{int(seq) + 1}"
