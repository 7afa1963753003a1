"""Hostile callback receivers: a huge answer cannot fill a notifier's memory, and an endless,
slow one cannot hold a delivery past AGENTLINK_CALLBACK_TIMEOUT_S."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from consumers.callback_sender import EXCERPT_BYTES, classify
from consumers.notifier import Notifier
from tests.conftest import Processes, settings_env, wait_for
from tests.support.callbacks import callback_state, enqueue_callback

MIB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)


@dataclass
class FloodingReceiver:
    """Answers ``status`` with a body of ``body_bytes`` (None: endless) after ``preamble``,
    in 64 KiB chunks (``drip``: one byte per 50 ms instead); records what it wrote and
    whether the client hung up on it."""

    status: int = 200
    body_bytes: int | None = 160 * MIB
    preamble: bytes = b""
    drip: bool = False
    sent: int = 0
    requests: int = 0
    hung_up: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/s3cret-path"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.requests += 1
                self.send_response(receiver.status)
                if receiver.body_bytes is not None:
                    self.send_header("content-length", str(receiver.body_bytes))
                self.end_headers()
                try:
                    self.wfile.write(receiver.preamble)
                    receiver.sent += len(receiver.preamble)
                    while receiver.body_bytes is None or receiver.sent < receiver.body_bytes:
                        if receiver.drip:
                            self.wfile.write(b".")
                            self.wfile.flush()
                            receiver.sent += 1
                            time.sleep(0.05)
                        else:
                            left = (receiver.body_bytes or len(CHUNK)) - receiver.sent
                            self.wfile.write(CHUNK[:left])
                            receiver.sent += min(left, len(CHUNK))
                except OSError:  # broken pipe, reset: the client closed the connection
                    receiver.hung_up.set()
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def flood() -> Iterator[FloodingReceiver]:
    receiver = FloodingReceiver()
    yield receiver
    receiver.stop()


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) * 1024


class TestHugeAnswers:
    def test_a_huge_2xx_body_is_not_read(
        self, settings: Settings, r: redis.Redis, processes: Processes, flood: FloodingReceiver
    ) -> None:
        """A 160 MiB answer to a delivered callback: the notifier process's peak memory grows
        by far less than the body, and it hangs up instead of reading it."""
        flood.start()
        env = settings_env(
            settings,
            AGENTLINK_CALLBACK_HOSTS="127.0.0.1",
            AGENTLINK_CALLBACK_ALLOW_INSECURE="true",
            AGENTLINK_CALLBACK_TIMEOUT_S="30",
        )
        notifier = processes.start(["-m", "consumers.notifier"], env, "notifier")
        wait_for(lambda: "notifier.started" in processes.log("notifier"), 30, "notifier start")
        before = peak_rss_bytes(notifier.pid)
        enqueue_callback(r, flood.url, job_id="j-huge")
        wait_for(lambda: "callback.delivered" in processes.log("notifier"), 60, "the delivery")
        wait_for(lambda: callback_state(r) == (0, 0, 0, 0), 30, "the callback settled")
        grown = peak_rss_bytes(notifier.pid) - before
        assert grown < 32 * MIB, f"peak RSS grew by {grown / MIB:.0f} MiB"
        assert flood.hung_up.wait(30)
        assert flood.sent < flood.body_bytes  # type: ignore[operator]
        assert notifier.poll() is None


class TestEndlessAnswers:
    def test_a_slow_endless_error_body_ends_with_the_time_bound(
        self, settings: Settings, r: redis.Redis, keys: Keys, flood: FloodingReceiver
    ) -> None:
        """500 and then one byte every 50 ms, forever: the delivery ends at the 2 s bound as
        'answered 500' with the body's start, and the connection is closed."""
        flood.status, flood.body_bytes, flood.drip = 500, None, True
        flood.preamble = b"upstream exploded"
        flood.start()
        bounded = replace(
            settings,
            callback_hosts=("127.0.0.1",),
            callback_allow_insecure=True,
            callback_timeout_s=2.0,
            callback_max_attempts=1,
        )
        notifier = Notifier(bounded, "bounded-1")
        thread = threading.Thread(target=notifier.run, daemon=True)
        thread.start()
        try:
            enqueue_callback(r, flood.url, job_id="j-endless")
            wait_for(lambda: callback_state(r)[3] == 1, 30, "a dead callback")
        finally:
            notifier.stopping.set()
            thread.join(10)
        [(_, dead)] = r.xrange(keys.callbacks.dead)
        assert dead["error"].startswith("gave up after 1 attempts: answered 500: upstream exploded")
        assert flood.hung_up.wait(10)
        assert flood.requests == 1


class TestExcerpt:
    def test_only_the_start_of_an_error_body_is_kept(self) -> None:
        """The error message carries at most 200 characters of the body, whitespace folded."""
        outcome = classify(502, None, b"bad\n  gateway " + b"y" * EXCERPT_BYTES)
        assert outcome.verdict == "retry"
        assert outcome.detail.startswith("answered 502: bad gateway yyy")
        assert len(outcome.detail) == len("answered 502: ") + 200
