"""Renders reports in a supervised child process.

WeasyPrint is CPU-bound, not thread-safe, and its memory grows with big documents. Running
it in a child keeps the consumer's own loop and lease renewal responsive, lets the consumer
kill a render that runs past ``AGENTLINK_RENDER_TIMEOUT_S`` (a transient error, like a
crash) and recycle the child after a number of jobs or above an RSS cap. An exception in
the report code itself comes back as ``UnexpectedJobError``: permanent, never retried.

The child is a fresh interpreter (``python -m consumers.render_child``), so it imports
WeasyPrint itself instead of inheriting a forked copy; it talks to its consumer over a
socket pair with ``multiprocessing``'s message framing. Unlike ``multiprocessing``'s
``spawn``, this starts no resource-tracker process: 13 MiB less per worker.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from agentlink import errors
from agentlink.errors import (
    ConfigurationError,
    DataSourceRejectedError,
    DataSourceUnavailableError,
    JobError,
    RenderFailedError,
    UnexpectedJobError,
)
from agentlink.jobs import ReportSpec
from agentlink.report_settings import BrandSettings, DataSettings
from consumers import metrics

if TYPE_CHECKING:  # the consumer itself never imports WeasyPrint; only its child does
    from agentlink.reports import RenderedReport

log = structlog.get_logger(__name__)

_POLL_S = 0.1
_START_TIMEOUT_S = 60.0


class RenderAbortedError(Exception):
    """The caller asked to stop waiting for the render (lease lost or shutdown)."""


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux), 0 if unknown."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a kill -9'd consumer)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return  # not Linux/glibc: the child still exits when its pipe closes
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _child_main(conn: multiprocessing.connection.Connection) -> None:
    """The render process: receive its settings ``(data, brand)``, then answer (spec,
    job_id, generated_at) requests until told to stop.

    First ``("ready", pid)``, or ``("config", class name, message)`` when the data source
    cannot be read or parsed (the class tells a file unreadable now from rows it rejects).

    Replies: ``("ok", report)``, or ``("error", class name, message, traceback)`` where the
    class is one of ``agentlink.errors`` (an exception outside that tree is reported as
    ``UnexpectedJobError`` with its own type in the message).
    """
    _die_with_parent()
    # Ctrl-C or a SIGTERM to the whole process group is for the consumer, which decides
    # whether the render finishes (graceful shutdown) or is killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from agentlink.reports import make_report, open_source
    from agentlink.reports.render import prepare

    data, brand = conn.recv()
    source = open_source(data)
    try:
        # Read before "ready": a missing or malformed sales file stops the worker at start,
        # naming the file and line, instead of failing every job; and no job pays for it.
        prepare(source)
    except (errors.ConfigurationError, errors.JobError) as exc:
        conn.send(("config", type(exc).__name__, str(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        spec, job_id, generated_at = request
        try:
            report = make_report(
                spec, job_id=job_id, source=source, generated_at=generated_at, brand=brand
            )
        except errors.JobError as exc:
            conn.send(("error", type(exc).__name__, str(exc), ""))
        except Exception as exc:  # noqa: BLE001 - the parent classifies, the child must not die
            message = str(errors.UnexpectedJobError.wrap(exc))
            conn.send(("error", "UnexpectedJobError", message, traceback.format_exc()))
        else:
            conn.send(("ok", report))


class ReportRenderer(Protocol):
    """What a consumer needs from whatever makes its PDFs (``Renderer`` in production)."""

    def start(self) -> None:
        """Get ready to render, before the first job is taken."""
        ...

    def render(
        self,
        spec: ReportSpec,
        *,
        job_id: str,
        generated_at: datetime,
        should_abort: Callable[[], bool] = ...,
    ) -> RenderedReport:
        """The report for ``spec``; ``RenderAbortedError`` once ``should_abort()`` is true."""
        ...

    def rss_bytes(self) -> int:
        """Memory held by the rendering process(es) now (0 when none runs)."""
        ...

    def memory(self) -> tuple[int, int]:
        """Current and peak ``rss_bytes``."""
        ...

    def close(self) -> None:
        """Release the rendering process(es)."""
        ...


class Renderer:
    """One supervised render child, started on first use and recycled as configured."""

    def __init__(
        self,
        *,
        timeout_s: float,
        data: DataSettings | None = None,
        brand: BrandSettings | None = None,
        sales_csv: Path | None = None,
        max_jobs: int,
        max_rss_bytes: int,
    ) -> None:
        # sales_csv is shorthand for data=DataSettings(kind="csv", location=...).
        if data is None:
            data = (
                DataSettings(kind="csv", location=str(sales_csv)) if sales_csv else DataSettings()
            )
        self.data = data
        self.brand = brand or BrandSettings()
        self.timeout_s = timeout_s
        self.max_jobs = max_jobs
        self.max_rss_bytes = max_rss_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._jobs = 0
        self.peak_rss_bytes = 0

    def _start(self) -> multiprocessing.connection.Connection:
        ours, theirs = socket.socketpair()
        parent = multiprocessing.connection.Connection(ours.detach())
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "consumers.render_child", "--fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:  # fork/exec refused: out of memory or processes for now
            self._process = None
            parent.close()
            raise RenderFailedError(f"cannot start the render process: {exc}") from exc
        finally:
            theirs.close()
        try:
            parent.send((self.data, self.brand))
        except Exception as exc:
            # The child would wait for its settings until we exit: kill it and reap it.
            parent.close()
            self.kill()
            if isinstance(exc, OSError):
                raise RenderFailedError(f"cannot start the render process: {exc}") from exc
            raise
        # Wait until WeasyPrint is imported: a consumer that says it started can render.
        hello: tuple[Any, ...]
        try:
            hello = parent.recv() if parent.poll(_START_TIMEOUT_S) else ("timeout", "")
        except (EOFError, OSError):
            hello = ("died", "")
        if hello[0] != "ready":
            self.kill()
            if hello[0] == "config":
                raise _source_error(hello)
            if hello[0] == "died":
                raise RenderFailedError("the render process died while starting")
            raise RenderFailedError(
                f"the render process did not start within {_START_TIMEOUT_S:g} s"
            )
        self._conn, self._jobs = parent, 0
        return parent

    def start(self) -> None:
        """Start the child now, so the first job does not wait for WeasyPrint to import.

        ``ConfigurationError`` if the data source cannot be read or parsed: a worker refuses
        to start on it, naming the file and line."""
        try:
            self._ensure_started()
        except (DataSourceRejectedError, DataSourceUnavailableError) as exc:
            raise ConfigurationError(str(exc)) from exc

    def _ensure_started(self) -> None:
        if self._process is None or self._process.poll() is not None:
            self._start()

    def rss_bytes(self) -> int:
        """The child's current RSS (0 when no child runs)."""
        process = self._process  # read once: the consumer's thread may replace it meanwhile
        return rss_bytes(process.pid) if process is not None else 0

    def memory(self) -> tuple[int, int]:
        """The child's current and peak RSS (the peak over every child this consumer ran)."""
        current = self.rss_bytes()
        self.peak_rss_bytes = max(self.peak_rss_bytes, current)
        return current, self.peak_rss_bytes

    def render(
        self,
        spec: ReportSpec,
        *,
        job_id: str,
        generated_at: datetime,
        should_abort: Callable[[], bool] = lambda: False,
    ) -> RenderedReport:
        """Render in the child. Job errors come back as they were raised there, any other
        exception as ``UnexpectedJobError`` (permanent); a crash or timeout is
        ``RenderFailedError`` (transient); ``should_abort()`` turning true kills the child
        and raises ``RenderAbortedError``. A new child (the last one was recycled or died)
        that cannot read the sales file raises what the running child would have: rows it
        rejects are ``DataSourceRejectedError`` (permanent), a file it cannot read now is
        ``DataSourceUnavailableError`` (transient)."""
        self._ensure_started()
        conn = self._conn
        assert conn is not None
        try:
            conn.send((spec, job_id, generated_at))
        except OSError as exc:  # the idle child died since the last job (OOM killer, kill)
            metrics.RENDERS_KILLED.labels(reason="crashed").inc()
            self.kill()
            raise RenderFailedError(f"the render process had died: {exc}") from exc
        deadline = time.monotonic() + self.timeout_s
        while not conn.poll(_POLL_S):
            if should_abort():
                metrics.RENDERS_KILLED.labels(reason="abandoned").inc()
                self.kill()
                raise RenderAbortedError(job_id)
            process = self._process
            if process is None or process.poll() is not None:
                code = process.returncode if process is not None else None
                metrics.RENDERS_KILLED.labels(reason="crashed").inc()
                self.kill()
                raise RenderFailedError(f"the render process died (exit code {code})")
            if time.monotonic() > deadline:
                metrics.RENDERS_KILLED.labels(reason="timeout").inc()
                self.kill()
                raise RenderFailedError(
                    f"render killed after {self.timeout_s:g} s (AGENTLINK_RENDER_TIMEOUT_S)"
                )
        try:
            reply = conn.recv()
        except (EOFError, OSError) as exc:
            metrics.RENDERS_KILLED.labels(reason="crashed").inc()
            self.kill()
            raise RenderFailedError(f"the render process died: {exc}") from exc
        self._jobs += 1
        self._recycle_if_needed()
        if reply[0] == "ok":
            report: RenderedReport = reply[1]
            return report
        _, name, message, child_traceback = reply
        cls = getattr(errors, name, None)
        if not (isinstance(cls, type) and issubclass(cls, JobError)):
            cls = UnexpectedJobError
        if cls is UnexpectedJobError:
            log.error("render.unexpected_error", error=message, traceback=child_traceback)
        raise cls(message)

    def _recycle_if_needed(self) -> None:
        rss = self.rss_bytes()
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        if self._jobs >= self.max_jobs or rss > self.max_rss_bytes:
            reason = "memory" if rss > self.max_rss_bytes else "jobs"
            metrics.RENDER_RECYCLES.labels(reason=reason).inc()
            log.info("render.recycled", jobs=self._jobs, rss_bytes=rss, reason=reason)
            self.close()

    def kill(self) -> None:
        """Kill the child now (a runaway render, or an abort)."""
        if self._process is not None:
            self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        """Ask the child to exit; kill it if it does not."""
        if self._conn is not None:
            with contextlib.suppress(OSError):  # a dead child is killed below anyway
                self._conn.send(None)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        self.kill()


def _source_error(reply: tuple[Any, ...]) -> Exception:
    """The error a child that could not prepare its data source reported (``("config",
    class name, message)``), as its class."""
    _, name, message = reply
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, JobError):
        return cls(message)
    return ConfigurationError(message)


def main(argv: list[str] | None = None) -> int:
    """``python -m consumers.render_child --fd N``: the render process of one consumer,
    talking over the socket ``N`` its consumer passed down."""
    parser = argparse.ArgumentParser(prog="python -m consumers.render_child")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the consumer")
    args = parser.parse_args(argv)
    _child_main(multiprocessing.connection.Connection(args.fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
