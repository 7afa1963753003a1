"""A real ``Consumer`` in a thread of the test, built with a renderer and a storage the test
drives (the ``renderer=`` and ``storage=`` seams the benchmarks use): nothing is patched."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from agentlink.errors import AgentLinkError
from agentlink.jobs import JobResult, ReportSpec
from agentlink.settings import Settings
from consumers.render_child import RenderAbortedError
from consumers.worker import Consumer


@dataclass(frozen=True, slots=True)
class EmptyReport:
    """What ``ReportJob`` reads of a rendered report."""

    pdf: bytes
    pages: int
    suburb: str


class HeldRenderer:
    """Renders an empty report; with ``hold`` set, each render waits until ``release`` is set
    (``RenderAbortedError`` once ``should_abort()`` turns true meanwhile)."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.release = threading.Event()
        self.started = threading.Event()

    def start(self) -> None:
        """Nothing to start."""

    def render(
        self,
        spec: ReportSpec,
        *,
        job_id: str,
        generated_at: datetime,
        should_abort: Callable[[], bool] = lambda: False,
    ) -> EmptyReport:
        """An empty report, once released."""
        del generated_at
        self.started.set()
        while self.hold.is_set() and not self.release.wait(0.05):
            if should_abort():
                raise RenderAbortedError(job_id)
        return EmptyReport(pdf=b"", pages=0, suburb=spec.suburb)

    def rss_bytes(self) -> int:
        """No render process."""
        return 0

    def memory(self) -> tuple[int, int]:
        """No render process."""
        return 0, 0

    def close(self) -> None:
        """Nothing to close."""


class ScriptedStorage:
    """Stores nothing; ``save`` raises the errors of ``failures`` first, one per call, and
    ``check`` raises ``check_error`` while it is set."""

    name = "scripted"

    def __init__(self, *failures: AgentLinkError) -> None:
        self.failures = list(failures)
        self.check_error: AgentLinkError | None = None
        self.saved: list[str] = []

    def save(self, relative_path: str, pdf: bytes) -> JobResult:
        """Raise the next scripted failure, or say where the file would have gone."""
        if self.failures:
            raise self.failures.pop(0)
        self.saved.append(relative_path)
        return JobResult(storage=self.name, path=relative_path, bytes=len(pdf))

    def check(self) -> None:
        """Raise ``check_error`` if set."""
        if self.check_error is not None:
            raise self.check_error


class ConsumerThread:
    """``Consumer.run`` in a daemon thread; ``result`` is its exit code or its exception."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.result: int | BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.consumer.run()
        except BaseException as exc:  # noqa: BLE001 - reported to the test, not lost
            self.result = exc

    def start(self) -> ConsumerThread:
        self.thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> int | BaseException | None:
        """Ask the consumer to stop; its result once the thread ended."""
        self.consumer.request_stop()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the consumer did not stop"
        return self.result


def consumer_with(
    settings: Settings, renderer: HeldRenderer, storage: ScriptedStorage
) -> ConsumerThread:
    """A consumer using ``renderer`` and ``storage``, not started yet."""
    return ConsumerThread(Consumer(settings, renderer=renderer, storage=storage))
