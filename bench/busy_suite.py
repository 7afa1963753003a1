"""The whole test suite, several times, while CPU hogs keep every core busy.

The suite must pass on a machine that is busy with something else: a developer's laptop
compiling, a CI runner shared with other jobs, a 2-core box where other people run tests.
A timing margin that holds only on an idle machine (a render timeout that includes a cold
start, a deadline a few times the expected duration) shows up here as a failed run.

    python -m bench.busy_suite [--runs 3] [--hogs N] [--keep] [-- PYTEST_ARGS...]

One hog per core (``--hogs``, default ``os.cpu_count()``) spins in pure Python at normal
priority for the whole session. Each run is ``python -m pytest -p no:cacheprovider`` in its
own process group (so everything it started is stopped with it), its output in the work
folder. The report gives, per run: the verdict, pytest's counts, the wall time, the CPU
busy share measured from ``/proc/stat`` (proof that the hogs did keep the cores busy) and
the failed tests. Exit 0 only if every run passed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import Processes, interrupt_on_sigterm, table, uninterrupted

_HOG = "while True: pass"
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass
class RunResult:
    """One run of the suite."""

    number: int
    exit_code: int
    seconds: float
    cpu_busy: float
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together, from the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def parse(output: str) -> tuple[dict[str, int], list[str]]:
    """pytest's counts from its final line, and the ids of failed or erroring tests."""
    lines = [line for line in output.splitlines() if _COUNT.search(line) and " in " in line]
    counts: dict[str, int] = {}
    for number, word in _COUNT.findall(lines[-1] if lines else ""):
        counts["errors" if word.startswith("error") else word] = int(number)
    return counts, sorted(set(_FAILED.findall(output)))


def run_suite(processes: Processes, number: int, work: Path, pytest_args: list[str]) -> RunResult:
    """Run the suite once; its output goes to ``work/run-<number>.log``."""
    name = f"run-{number}.log"
    busy_before, total_before = cpu_times()
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    suite = processes.start(["-m", "pytest", "-p", "no:cacheprovider", *pytest_args], env, name)
    code = suite.wait()
    processes.live.remove(suite)
    seconds = time.monotonic() - started
    busy_after, total_after = cpu_times()
    cpu_busy = (busy_after - busy_before) / max(1, total_after - total_before)
    counts, failed = parse((work / name).read_text(errors="replace"))
    return RunResult(number, code, seconds, cpu_busy, counts, failed)


def report(results: list[RunResult], hogs: int) -> str:
    """The per-run table and the verdict."""
    rows = []
    for result in results:
        counts = ", ".join(f"{n} {word}" for word, n in result.counts.items()) or "no summary"
        rows.append(
            [
                str(result.number),
                "PASS" if result.passed else f"FAIL (exit {result.exit_code})",
                counts,
                f"{result.seconds:.0f} s",
                f"{result.cpu_busy:.0%}",
            ]
        )
    lines = [
        f"The test suite with {hogs} CPU hog(s) spinning ({os.cpu_count()} cores):",
        "",
        table(["run", "verdict", "pytest", "wall time", "CPU busy"], rows),
    ]
    for result in results:
        for test in result.failed:
            lines.append(f"run {result.number}: {test}")
    passed = sum(r.passed for r in results)
    lines.append("")
    lines.append(f"{passed} of {len(results)} run(s) passed.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the hogs, run the suite ``--runs`` times; 0 if all passed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.busy_suite",
        description="Run the whole test suite several times while CPU hogs keep every core "
        "busy, and report pass/fail per run.",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of the suite (default 3)")
    parser.add_argument(
        "--hogs", type=int, default=os.cpu_count() or 2, help="busy-looping processes (cores)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs' folder")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed on to pytest")
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="agentlink-busy-suite-"))
    processes = Processes(work)
    results: list[RunResult] = []
    try:
        hogs = [
            processes.start(["-c", _HOG], os.environ.copy(), "hogs.log") for _ in range(args.hogs)
        ]
        print(f"{len(hogs)} hog(s) started; logs in {work}", flush=True)
        for number in range(1, args.runs + 1):
            result = run_suite(processes, number, work, args.pytest_args)
            results.append(result)
            verdict = "passed" if result.passed else f"FAILED: {', '.join(result.failed)}"
            print(f"run {number}: {verdict} ({result.seconds:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        with uninterrupted():
            processes.stop_all(grace_s=5.0)
    print()
    print(report(results, args.hogs))
    if args.keep or not all(r.passed for r in results):
        print(f"logs: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    finished = len(results) == args.runs
    return 0 if finished and all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
