"""A rendered report, as it travels from the render process to its consumer.

Its own light module: the consumer unpickles one per job, and unpickling imports the
class's module, which must not drag WeasyPrint (tens of MiB) into the consumer process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """A finished report and what the job record says about it."""

    pdf: bytes
    pages: int
    title: str
    suburb: str  # display spelling, from the data
    period_start: date  # first day counted
    period_end: date  # last day counted
