"""Throughput and failures over the last hour and the last 24 hours, as inline SVG charts.

The counts come from the hourly hashes the scripts keep in Redis
(``agentlink:stats:history:<hour>``, field ``<minute>:<event>``, kept 26 h: see
``stream/lua/job_status.lua``), so the history outlives any API process; one pipelined
round trip reads the 25 hours both charts need. Each chart is geometry computed here (bars
stacked by outcome, a line of accepted jobs) that a template draws as SVG, with a title,
a description and the totals in text, so it reads without the picture too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from agentlink.api.store import JobStore

EVENTS = ("accepted", "completed", "failed", "dead", "cancelled")
STACK = (("completed", "completed"), ("failures", "failed or dead"), ("cancelled", "cancelled"))
"""The bars' segments, bottom up: (name, what it counts, in words)."""
WIDTH, HEIGHT = 600, 160
"""The plot's own units: the SVG stretches to its box, the labels are HTML around it
(placed in percent), so text never stretches with it."""
TOP = 8


@dataclass(frozen=True, slots=True)
class Bucket:
    """The counts of one minute or one hour."""

    counts: dict[str, int]

    def get(self, name: str) -> int:
        """A count by event, or ``failures`` (failed + dead)."""
        if name == "failures":
            return self.counts.get("failed", 0) + self.counts.get("dead", 0)
        return self.counts.get(name, 0)


@dataclass(frozen=True, slots=True)
class Segment:
    """One outcome's part of a bar."""

    name: str
    y: float
    height: float
    count: int


@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket's stacked bar."""

    x: float
    width: float
    label: str
    segments: list[Segment]


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart ready to draw: bars, the accepted line, the axes and the totals."""

    key: str
    title: str
    width: int
    height: int
    bars: list[Bar]
    accepted_points: str
    ticks: list[tuple[float, int]]
    """Horizontal grid lines: (y, value)."""
    x_labels: list[tuple[float, str]]
    """(x in percent of the width, text)."""
    totals: dict[str, int]

    @property
    def tick_labels(self) -> list[tuple[float, int]]:
        """(y in percent of the height, value) of the grid lines."""
        return [(round(y / self.height * 100, 2), value) for y, value in self.ticks]

    @property
    def description(self) -> str:
        """The chart in words."""
        t = self.totals
        return (
            f"{t['accepted']} accepted, {t['completed']} completed, {t['failed']} failed, "
            f"{t['dead']} dead, {t['cancelled']} cancelled."
        )


async def read_history(store: JobStore, now_s: float | None = None) -> tuple[Chart, Chart]:
    """The last hour by minute and the last 24 hours by hour, read in one round trip."""
    now_s = time.time() if now_s is None else now_s
    hour_now = int(now_s // 3600)
    hours = list(range(hour_now - 24, hour_now + 1))

    async def read() -> list[Any]:
        pipe = store.client.pipeline(transaction=False)
        for hour in hours:
            pipe.hgetall(store.keys.history(hour))
        return await pipe.execute()

    hashes: dict[int, dict[str, str]] = dict(zip(hours, await store.run(read), strict=True))
    minute_now = int(now_s // 60)
    minutes = [
        _minute(hashes.get(minute // 60, {}), minute % 60)
        for minute in range(minute_now - 59, minute_now + 1)
    ]
    by_hour = [_hour(hashes.get(hour, {})) for hour in hours[1:]]
    return (
        chart("hour", "Last hour, per minute", minutes, _labels(60, 15, "min")),
        chart("day", "Last 24 hours, per hour", by_hour, _labels(24, 6, "h")),
    )


def _minute(fields: dict[str, str], minute: int) -> Bucket:
    return Bucket({event: int(fields.get(f"{minute}:{event}", 0)) for event in EVENTS})


def _hour(fields: dict[str, str]) -> Bucket:
    counts = dict.fromkeys(EVENTS, 0)
    for name, value in fields.items():
        _, _, event = name.partition(":")
        if event in counts:
            counts[event] += int(value)
    return Bucket(counts)


def _labels(count: int, every: int, unit: str) -> list[tuple[int, str]]:
    """(bucket index, text) for the x axis, every ``every`` units back: "−45 min" … "now"."""
    labels = []
    for index in range(count):
        back = count - 1 - index
        if back % every == 0:
            labels.append((index, "now" if back == 0 else f"−{back} {unit}"))
    return labels


def _nice_max(value: int) -> int:
    """The smallest of 1, 2 or 5 times 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def chart(key: str, title: str, buckets: list[Bucket], labels: list[tuple[int, str]]) -> Chart:
    """The geometry of ``buckets`` as stacked bars with the accepted jobs as a line."""
    plot_h = HEIGHT - TOP
    baseline = HEIGHT
    highest = max(
        [sum(b.get(name) for name, _ in STACK) for b in buckets]
        + [b.get("accepted") for b in buckets]
        + [1]
    )
    top = _nice_max(highest)
    scale = plot_h / top
    slot = WIDTH / len(buckets)
    bars, points = [], []
    for index, bucket in enumerate(buckets):
        x = index * slot
        y = float(baseline)
        segments = []
        for name, _ in STACK:
            count = bucket.get(name)
            if count:
                height = count * scale
                y -= height
                segments.append(Segment(name, round(y, 1), round(height, 1), count))
        words = ", ".join(f"{bucket.get(name)} {text}" for name, text in STACK)
        when = labels_at(index, labels, len(buckets))
        label = f"{when}: {bucket.get('accepted')} accepted, {words}"
        bars.append(Bar(round(x + slot * 0.15, 1), round(slot * 0.7, 1), label, segments))
        points.append(f"{x + slot / 2:.1f},{baseline - bucket.get('accepted') * scale:.1f}")
    ticks = {(round(baseline - value * scale, 1), value) for value in (0, top // 2, top)}
    totals = {event: sum(b.get(event) for b in buckets) for event in EVENTS}
    return Chart(
        key=key,
        title=title,
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        accepted_points=" ".join(points),
        ticks=sorted(ticks),
        x_labels=[(round((index + 0.5) / len(buckets) * 100, 2), text) for index, text in labels],
        totals=totals,
    )


def labels_at(index: int, labels: list[tuple[int, str]], count: int) -> str:
    """How far back bucket ``index`` lies, in the axis's unit."""
    unit = next((text.split()[-1] for _, text in labels if text != "now"), "")
    back = count - 1 - index
    return "now" if back == 0 else f"{back} {unit} ago"
