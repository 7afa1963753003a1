"""``agentlink worker --concurrency N``: N consumer processes, restarted if they die.

Each child is a plain ``python -m consumers --slot K`` process with the stable consumer
name ``<AGENTLINK_CONSUMER_NAME>-K``, so a restarted child first resumes its own pending
entries. SIGTERM/SIGINT are forwarded; every child finishes (or hands back) its job within
the shutdown grace period, and the supervisor exits 0 once all have stopped.

A child that exits 2 refused its configuration (a bad setting, a sales file it cannot read
or parse, a consumer name another live process holds): every restart would refuse it
again, so the supervisor stops the others and exits 2 too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

CONFIGURATION_EXIT = 2
"""The exit code of a consumer that refuses its configuration (``consumers.__main__``)."""


class Supervisor:
    """Keeps ``concurrency`` consumer processes running until told to stop."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.restart_delay_s: dict[int, float] = {}
        self.stopping = threading.Event()
        self.exit_code = 0

    def _spawn(self, slot: int) -> None:
        child = subprocess.Popen([sys.executable, "-m", "consumers", "--slot", str(slot)])
        self.children[slot] = child
        log.info("worker.child_started", slot=slot, pid=child.pid)
        if self.stopping.is_set():  # SIGTERM arrived while this child was being started
            child.send_signal(signal.SIGTERM)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping.is_set():
            log.info("worker.stopping", signal=signum)
        self.stopping.set()
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT and every child has exited; returns the exit code."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for slot in range(1, self.concurrency + 1):
            self._spawn(slot)
        while True:
            for slot, child in list(self.children.items()):
                code = child.poll()
                if code is None:
                    continue
                if self.stopping.is_set():
                    del self.children[slot]
                    continue
                if code == CONFIGURATION_EXIT:
                    del self.children[slot]
                    self._refused(slot)
                    continue
                delay = self.restart_delay_s.get(slot, 0.5)
                log.error("worker.child_died", slot=slot, exit_code=code, restart_in_s=delay)
                self.stopping.wait(delay)
                self.restart_delay_s[slot] = min(delay * 2, 30.0)
                if self.stopping.is_set():  # told to stop during the delay: do not restart
                    del self.children[slot]
                    continue
                self._spawn(slot)
            if self.stopping.is_set() and not self.children:
                log.info("worker.stopped", exit_code=self.exit_code)
                return self.exit_code
            time.sleep(0.2)

    def _refused(self, slot: int) -> None:
        """Stop everything: the child refused the configuration, which all children share."""
        log.error(
            "worker.child_misconfigured",
            slot=slot,
            exit_code=CONFIGURATION_EXIT,
            hint="fix the setting the child named above; not restarting",
        )
        self.exit_code = CONFIGURATION_EXIT
        self._stop(signal.SIGTERM, None)
