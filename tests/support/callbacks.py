"""The callback stream as tests read and fill it, a webhook receiver on loopback, and the
callback tests' settings, submission and job outcome (fixtures registered in tests/conftest.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.jobs import Status
from agentlink.settings import Settings
from agentlink.stream.encoding import flatten
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome
from consumers.notifier import Notifier

AGENTS = "/api/generate-agents-report"
SECRET = "s3cret-for-tests"


def callback_state(r: redis.Redis) -> tuple[int, int, int, int]:
    """(stream length, pending, delayed, dead) of the callback stream."""
    keys = Keys().callbacks
    pending = 0
    if r.exists(keys.stream) and r.xinfo_groups(keys.stream):
        pending = r.xpending(keys.stream, keys.group)["pending"]
    return (
        r.xlen(keys.stream) if r.exists(keys.stream) else 0,
        pending,
        r.zcard(keys.delayed),
        r.xlen(keys.dead) if r.exists(keys.dead) else 0,
    )


def enqueue_callback(r: redis.Redis, url: str, job_id: str) -> None:
    """A callback entry as the outcome scripts write it."""
    record = {
        "job_id": job_id,
        "kind": "agents",
        "status": "completed",
        "suburb": "Manly",
        "state": "NSW",
        "created_at": "2026-11-26T10:00:00.000+00:00",
    }
    fields = {
        "job_id": job_id,
        "status": "completed",
        "url": url,
        "attempt": "1",
        "record": msgspec.json.encode(record).decode(),
    }
    r.execute_command("XADD", Keys().callbacks.stream, "*", *flatten(fields))


@dataclass
class Received:
    """One request the test receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def record(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers from a script of statuses.

    ``answers`` is consumed one per request (the last one repeats); ``"hang"`` holds the
    request open until ``release`` is set.
    """

    answers: list[int | str] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?scenario=1"

    def start(self, port: int = 0) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                answer = (
                    receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                )
                if answer == "hang":
                    receiver.release.wait(60)
                    return
                self.send_response(int(answer))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver answering 200."""
    rec = Receiver()
    rec.start()
    yield rec
    rec.stop()


@pytest.fixture
def notifier(cb_settings: Settings) -> Iterator[Notifier]:
    """A notifier running in a thread of the test process."""
    running = Notifier(cb_settings, "test-notifier-1")
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running
    running.stopping.set()
    thread.join(10)
    assert not thread.is_alive()


@pytest.fixture
def cb_settings(settings: Settings) -> Settings:
    """Callbacks allowed to 127.0.0.1 over http (AGENTLINK_CALLBACK_ALLOW_INSECURE), signed,
    with fast retries."""
    return replace(
        settings,
        callback_hosts=("127.0.0.1",),
        callback_allow_insecure=True,
        webhook_secret=SECRET,
        callback_timeout_s=3.0,
        callback_retry_base_s=0.05,
        callback_retry_max_s=0.2,
        callback_max_attempts=4,
    )


def submit(client: TestClient[Any], callback_url: str) -> str:
    """An agents report for Manly, NSW submitted with ``callback_url``; its job id."""
    response = client.post(
        AGENTS, json={"suburb": "Manly", "state": "NSW", "callback_url": callback_url}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def finish(r: redis.Redis, keys: Keys, job_id: str, status: Status = Status.COMPLETED) -> None:
    """What a consumer does at the end of a job: the outcome script (with its hook)."""
    records = JobRecords(r, keys, "test-1")
    [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, "test-1", {keys.stream: ">"}, count=1)
    fields = {"finished_at": "2026-11-26T10:00:00.000+00:00"}
    if status == Status.FAILED:
        fields["error"] = "no sales recorded for Manly, NSW"
    assert records.finish(entry_id, job_id, 3600, Outcome(status, fields, []))[0]


def finished_job(settings: Settings, r: redis.Redis, keys: Keys, callback_url: str) -> str:
    """A job submitted through the API with ``callback_url`` and finished as a consumer
    finishes it (``finish``): its callback is queued. Returns the job id."""
    with TestClient(app=create_app(settings)) as client:
        job_id = submit(client, callback_url)
    finish(r, keys, job_id)
    return job_id
