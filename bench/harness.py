"""What the benchmark runs share: child processes that are always stopped, memory read from
``/proc``, the sample suburbs, small statistics, HTTP and table helpers.

Every child runs in a process group of its own. A Ctrl-C in the terminal then reaches only
the benchmark, which stops its children in order (SIGTERM, then SIGKILL); killing each
group at the end also takes the render grandchildren that a ``kill -9``-ed consumer leaves
behind.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import httpx

if TYPE_CHECKING:
    from agentlink.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without AgentLink settings, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AGENTLINK_") and k != "REDIS_URL"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Processes:
    """The child processes of one run; ``stop_all`` stops every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.groups: list[int] = []
        self.live: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: list[str], env: dict[str, str], log_name: str, *, python: str | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``python args…`` (this interpreter unless ``python`` names another) in its
        own process group, output appended to ``log_name``."""
        with (self.log_dir / log_name).open("ab") as log:
            process = subprocess.Popen(
                [python or sys.executable, *args],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(process.pid)
        self.live.append(process)
        return process

    def stop_all(self, grace_s: float = 15.0) -> None:
        """SIGTERM every live child, SIGKILL what is left after ``grace_s``, then each group."""
        for process in self.live:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for group in self.groups:
            # Orphaned render children of killed consumers are still in their group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        self.live.clear()
        self.groups.clear()


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Make ``kill <pid>`` unwind like Ctrl-C, so every ``finally`` stops its processes."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM while cleaning up (a second Ctrl-C must not orphan children)."""
    previous = (
        signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def bench_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's options, starting with the one they all share (``--keep``); its module
    docstring is its ``--help``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    return parser


@contextlib.contextmanager
def work_folder(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A fresh folder for one run's files and logs, deleted at the end unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        with uninterrupted():
            if keep:
                print(f"work folder kept: {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)


def run_consumer(
    prog: str,
    slot: int,
    parts: Callable[[Settings], dict[str, Any]],
    *,
    log_stream: TextIO | None = None,
) -> int:
    """Run one real ``consumers.worker.Consumer`` with the parts a benchmark swaps in
    (``parts(settings)``: its ``storage`` or ``renderer``) until SIGTERM; exit 2 naming a
    bad setting or a consumer name already taken. Logs go to ``log_stream`` as JSON if
    given, else as the settings say."""
    from agentlink.errors import ConfigurationError
    from agentlink.observe.logging import configure_logging
    from agentlink.settings import Settings
    from consumers.lease import NameTakenError
    from consumers.worker import Consumer

    try:
        settings = Settings.from_env()
        log_format = "json" if log_stream else settings.log_format
        configure_logging(
            log_format, settings.log_level, secrets=settings.secrets, stream=log_stream
        )
        consumer = Consumer(settings, slot, **parts(settings))
    except ConfigurationError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    consumer.install_signal_handlers()
    try:
        return consumer.run()
    except NameTakenError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


# -- memory ------------------------------------------------------------------------------------


def memory_kib(pid: int) -> tuple[int, int] | None:
    """``(VmRSS, VmHWM)`` of a live process in KiB, from ``/proc/<pid>/status``."""
    rss = hwm = 0
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (every thread's ``children`` file)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(p) for p in children.read_text().split())
    return found


def cmdline(pid: int) -> str:
    """The command line of a process, spaces between arguments ("" if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class PeakMemory(threading.Thread):
    """Samples a process and its children every ``interval_s``; keeps the peaks (KiB).

    ``VmHWM`` is the kernel's own high-water mark, so a peak between two samples is not
    missed; ``combined_rss_kib`` (parent + children at the same instant) is sampled.
    """

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        super().__init__(name="peak-memory", daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.parent_hwm_kib = 0
        self.render_hwm_kib = 0
        self.other_children_hwm_kib = 0
        self.combined_rss_kib = 0
        self.render_pids: set[int] = set()
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until ``stop``."""
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        """Read the process and its children once."""
        parent = memory_kib(self.pid)
        if parent is None:
            return
        total = parent[0]
        self.parent_hwm_kib = max(self.parent_hwm_kib, parent[1], parent[0])
        for child in child_pids(self.pid):
            reading = memory_kib(child)
            if reading is None:
                continue
            total += reading[0]
            if "consumers.render_child" in cmdline(child):  # the WeasyPrint render process
                self.render_pids.add(child)
                self.render_hwm_kib = max(self.render_hwm_kib, *reading)
            else:
                self.other_children_hwm_kib = max(self.other_children_hwm_kib, *reading)
        self.combined_rss_kib = max(self.combined_rss_kib, total)
        self.samples += 1

    def stop(self) -> None:
        """Stop sampling, after one last sample."""
        self._stop_event.set()
        self.join(5)
        self.sample()


# -- data, numbers, output -----------------------------------------------------------------------


def sample_suburbs() -> list[tuple[str, str, int]]:
    """``(suburb, state, sales)`` of every suburb in the bundled sample data, most sales first.

    Read with the csv module rather than through ``agentlink.reports``, which would import
    WeasyPrint into processes that never render.
    """
    counts: dict[tuple[str, str], int] = {}
    data = resources.files("agentlink.reports") / "data" / "sample_sales.csv"
    with io.TextIOWrapper(data.open("rb"), encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["suburb"], row["state"])
            counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(suburb, state, n) for (suburb, state), n in ranked]


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return statistics.median(values) if values else float("nan")


def epoch_s(iso: str | None) -> float | None:
    """Unix seconds of an ISO 8601 timestamp with a zone (AgentLink's format), or None."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def mib(kib: int) -> str:
    """KiB as ``"123.4 MiB"``."""
    return f"{kib / 1024:.1f} MiB"


def seconds(value: float) -> str:
    """Seconds to three significant places, or ``"-"`` for NaN."""
    if value != value:  # NaN
        return "-"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "", indent: str = "  "
) -> str:
    """Rows as text columns; ``align`` has one ``l`` or ``r`` per column (default: ``lrr…``)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            str(cell).ljust(widths[i]) if align[i] == "l" else str(cell).rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append(indent + "  ".join(cells).rstrip())
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Api:
    """An AgentLink API process on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"


def wait_for_health(client: httpx.Client, api: Api, timeout_s: float = 60.0) -> None:
    """Poll ``GET /health`` until it answers 200; raise if the API exits or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise RuntimeError(f"the API exited with code {api.process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if client.get("/health").status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the API did not become healthy within {timeout_s:g} s")
