"""How long to wait before trying again: the one back-off of the consumers and notifiers.

Exponential: ``base_s`` doubled per attempt, capped at ``max_s``, with *equal jitter* — half
of that delay fixed, the other half random — so that consumers which failed together do not
retry together, yet none retries much sooner than planned. A server's ``Retry-After`` is a
floor (still capped).
"""

from __future__ import annotations

import random


def backoff_s(
    attempt: int, *, base_s: float, max_s: float, retry_after_s: float | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
    ceiling = min(max_s, base_s * 2.0 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return min(max_s, max(delay, retry_after_s or 0.0))
