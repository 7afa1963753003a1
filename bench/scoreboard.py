"""The side-by-side table of ``bench.frontdoor``: figure, ours, peer, ratio, target, verdict.

Ratios are always ours ÷ peer: above 1 is better for rates, below 1 for times and memory.
A verdict is ``pass`` or ``MISS`` where the issue sets a target, ``-`` where it does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.harness import table


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    figure: str
    ours: str
    peer: str = "-"
    ratio: str = "-"
    target: str = "-"
    verdict: str = "-"


@dataclass(slots=True)
class Scoreboard:
    """Rows in order, and notes printed under the table."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        figure: str,
        ours: str,
        peer: str = "-",
        *,
        ratio: float | None = None,
        target: str = "-",
        ok: bool | None = None,
    ) -> None:
        """Add a row; ``ok`` None means no target (or nothing to judge)."""
        verdict = "-" if ok is None else ("pass" if ok else "MISS")
        self.rows.append(Row(figure, ours, peer, _ratio(ratio), target, verdict))

    def section(self, title: str) -> None:
        """A heading row."""
        self.rows.append(Row(f"**{title}**", "", "", "", "", ""))

    def markdown(self) -> str:
        """The table as GitHub markdown."""
        header = ["figure", "ours (AgentLink)", "peer (FastAPI + RQ)", "ratio", "target", "verdict"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [row.figure, row.ours, row.peer, row.ratio, row.target, row.verdict]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)

    def text(self) -> str:
        """The table as aligned text columns (for a terminal)."""
        header = ["figure", "ours", "peer", "ratio", "target", "verdict"]
        rows = [
            [r.figure.strip("*"), r.ours, r.peer, r.ratio, r.target, r.verdict] for r in self.rows
        ]
        return table(header, rows, align="lrrrll")


def _ratio(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"x{value:.2f}" if value < 10 else f"x{value:.0f}"


def ratio(ours: float, peer: float) -> float | None:
    """ours ÷ peer, None when either is missing or the peer is 0."""
    if not (math.isfinite(ours) and math.isfinite(peer)) or peer == 0:
        return None
    return ours / peer


def ms(value: float) -> str:
    """Milliseconds, 3 significant digits."""
    if not math.isfinite(value):
        return "-"
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def per_s(value: float) -> str:
    """A rate per second."""
    return "-" if not math.isfinite(value) else f"{value:,.0f}/s"


def statuses(counts: Mapping[int | str, int]) -> str:
    """``"900 x 503, 3 x 500"`` or ``"none"``."""
    if not counts:
        return "none"
    return ", ".join(f"{n} x {s}" for s, n in sorted(counts.items(), key=lambda i: -i[1]))


def at_most(value: float, limit: float) -> bool | None:
    """value ≤ limit, None when there is no value."""
    return None if not math.isfinite(value) else value <= limit


def at_least(value: float | None, limit: float) -> bool | None:
    """value ≥ limit, None when there is no value."""
    return None if value is None or not math.isfinite(value) else value >= limit
