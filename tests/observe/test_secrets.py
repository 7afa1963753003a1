"""Secrets never reach a log line, an error message or the CLI's output.

One run with everything secret at once: API keys, a password-protected Redis
(``requirepass``), Dropbox storage (the real SDK against tests/support/fake_dropbox.py,
refresh token and app secret), signed callbacks to a local receiver whose URL path and
query are secret.
The API and the worker run as processes at debug level; the CLI's commands run against the
live stack and against a dead Redis. Every line they wrote is searched for every secret.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis

from agentlink.admin.devredis import RedisServer
from agentlink.observe.redaction import SecretScrubber, redact_url, redact_urls
from tests.conftest import ROOT, Processes, settings_env, wait_for
from tests.support.fake_dropbox import APP_KEY, FakeDropbox
from tests.support.settings import quick_settings
from tests.support.tls import make_certificates

TOKEN = secrets.token_hex(6)
API_KEYS = (f"key-one-{TOKEN}", f"key-two-{TOKEN}")
WRONG_KEY = f"not-a-key-{TOKEN}"
REDIS_PASSWORD = f"redis-pw-{TOKEN}"
WRONG_PASSWORD = f"wrong-pw-{TOKEN}"
APP_SECRET = f"app-secret-{TOKEN}"
WEBHOOK_SECRET = f"webhook-secret-{TOKEN}"
HOOK_PATH = f"hookpath{TOKEN}"
HOOK_QUERY = f"hookquery{TOKEN}"


class HookReceiver:
    """Webhook receiver: ``/ok/…`` answers 200; anything else 404 echoing the path."""

    def __init__(self) -> None:
        self.received: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append(self.path)
                ok = self.path.startswith("/ok/")
                body = b"" if ok else f"no hook at {self.path}".encode()
                self.send_response(200 if ok else 404)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, kind: str) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/{kind}/{HOOK_PATH}?token={HOOK_QUERY}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Run:
    """What the run left behind: every output, by name, and the secrets to look for."""

    outputs: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    cli_codes: dict[str, int] = field(default_factory=dict)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentlink", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The whole stack with every secret set; its outputs once Redis was killed under it."""
    tmp = tmp_path_factory.mktemp("secrets")
    server = RedisServer(tmp / "redis")
    server.start()
    with redis.Redis(port=server.port) as plain:
        plain.config_set("requirepass", REDIS_PASSWORD)
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{server.port}/0"
    certificates = make_certificates(tmp / "tls")
    fake = FakeDropbox()
    fake.serve(certificates)
    fake.app_secret = APP_SECRET
    refresh_token = fake.new_refresh_token()
    receiver = HookReceiver()
    processes = Processes(tmp)
    done = Run()
    settings = quick_settings(redis_url, tmp, "sec")
    extra = {
        "AGENTLINK_LOG_LEVEL": "debug",
        "AGENTLINK_API_KEYS": ",".join(API_KEYS),
        "AGENTLINK_STORAGE": "dropbox",
        "DROPBOX_APP_KEY": APP_KEY,
        "DROPBOX_APP_SECRET": APP_SECRET,
        "DROPBOX_REFRESH_TOKEN": refresh_token,
        "DROPBOX_API_HOST": fake.host,
        "DROPBOX_API_CONTENT_HOST": fake.host,
        "REQUESTS_CA_BUNDLE": str(certificates.ca),
        "AGENTLINK_CALLBACK_HOSTS": "127.0.0.1",
        "AGENTLINK_CALLBACK_ALLOW_INSECURE": "true",
        "AGENTLINK_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    env = settings_env(settings, **extra)
    stack = contextlib.ExitStack()
    try:
        base = processes.api(settings, **extra)
        worker = processes.start(["-m", "agentlink", "worker"], env, "worker")
        http = stack.enter_context(httpx.Client(base_url=base, timeout=10))
        assert http.post("/api/generate-agents-report", json={}).status_code == 401
        wrong = http.post(
            "/api/generate-agents-report",
            headers={"X-API-Key": WRONG_KEY},
            json={"suburb": "Manly", "state": "NSW"},
        )
        assert wrong.status_code == 401
        auth = {"Authorization": f"Bearer {API_KEYS[0]}"}
        jobs, owners = {}, {}
        for name, kind, suburb, hook in (
            ("delivered", "agents", "Manly", "ok"),
            ("refused", "agency", "Manly", "gone"),
            ("failed", "agents", "Nowhere", "ok"),
        ):
            owner = {"X-API-Key": API_KEYS[1]} if name == "failed" else auth
            response = http.post(
                f"/api/generate-{kind}-report",
                headers=owner,
                json={"suburb": suburb, "state": "NSW", "callback_url": receiver.url(hook)},
            )
            assert response.status_code == 202, response.text
            jobs[name], owners[name] = response.json()["job_id"], owner

        def finished(name: str) -> dict[str, Any] | None:
            answer = http.get(f"/api/job-status/{jobs[name]}", headers=owners[name])
            record: dict[str, Any] = answer.json()
            return record if record.get("status") in {"completed", "failed", "dead"} else None

        records = {n: wait_for(lambda n=n: finished(n), 120, n) for n in jobs}
        assert [records[n]["status"] for n in jobs] == ["completed", "completed", "failed"]
        assert records["delivered"]["result"]["storage"] == "dropbox"
        pdf = http.get(f"/api/jobs/{jobs['delivered']}/pdf", headers=auth)
        assert pdf.status_code == 302
        wait_for(lambda: len(receiver.received) == 3, 60, "three callbacks")
        wait_for(lambda: "callback.dead" in processes.log("worker"), 30, "the refused callback")

        good = {**env}
        for name, args in {
            "inspect": ("inspect",),
            "inspect-json": ("inspect", "--json"),
            "job": ("job", jobs["delivered"]),
            "dlq-list": ("dlq", "list"),
            "dlq-list-json": ("dlq", "list", "--json"),
            "dropbox-check": ("dropbox", "check"),
        }.items():
            result = cli(good, *args)
            done.outputs[f"cli {name}"] = result.stdout + result.stderr
            done.cli_codes[name] = result.returncode
        wrong_password = {**env, "REDIS_URL": redis_url.replace(REDIS_PASSWORD, WRONG_PASSWORD)}
        result = cli(wrong_password, "inspect")
        done.outputs["cli inspect (wrong password)"] = result.stdout + result.stderr
        done.cli_codes["wrong-password"] = result.returncode

        server.kill()  # Redis gone: every process now talks about it
        for name, args in {
            "inspect-unreachable": ("inspect",),
            "dlq-unreachable": ("dlq", "list"),
            "job-unreachable": ("job", jobs["delivered"]),
        }.items():
            result = cli(good, *args)
            done.outputs[f"cli {name}"] = result.stdout + result.stderr
            done.cli_codes[name] = result.returncode
        assert http.get("/health").status_code == 503
        wait_for(lambda: "redis_unavailable" in processes.log("worker"), 30, "the worker noticing")
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        done.outputs["api log"] = processes.log("api")
        done.outputs["worker log"] = processes.log("worker")
        done.secrets = {
            "API key 1": API_KEYS[0],
            "API key 2": API_KEYS[1],
            "a rejected API key": WRONG_KEY,
            "Redis password": REDIS_PASSWORD,
            "a wrong Redis password": WRONG_PASSWORD,
            "Dropbox app secret": APP_SECRET,
            "Dropbox refresh token": refresh_token,
            "webhook secret": WEBHOOK_SECRET,
            "callback URL path": HOOK_PATH,
            "callback URL query": HOOK_QUERY,
        }
        for n, token in enumerate(fake.tokens, start=1):
            done.secrets[f"Dropbox access token {n}"] = token
        yield done
    finally:
        stack.close()
        processes.stop_all()
        receiver.stop()
        fake.stop()
        server.kill()


class TestNoSecretInAnyOutput:
    def test_the_run_went_through_the_interesting_paths(self, run: Run) -> None:
        """Uploads, deliveries, a refused callback, a token refresh, outages: all happened."""
        worker = run.outputs["worker log"]
        for event in ("dropbox.stored", "callback.delivered", "callback.dead", "redis_unavailable"):
            assert event in worker
        assert run.secrets["Dropbox access token 1"]
        assert run.cli_codes["inspect"] == 0
        assert run.cli_codes["job"] == 0
        assert run.cli_codes["dropbox-check"] == 0
        assert run.cli_codes["wrong-password"] == 2
        assert run.cli_codes["inspect-unreachable"] == 2

    def test_no_secret_anywhere(self, run: Run) -> None:
        """No output of any process or CLI command holds any of the secrets."""
        leaks = [
            f"{what} in {where}: …{text[max(0, text.find(value) - 80) : text.find(value) + 40]}…"
            for where, text in run.outputs.items()
            for what, value in run.secrets.items()
            if value in text
        ]
        assert leaks == []

    def test_redis_is_named_without_its_password(self, run: Run) -> None:
        """Unreachable and refusing Redis are named as redis://:***@host:port/db."""
        unreachable = run.outputs["cli inspect-unreachable"]
        assert "Redis unreachable at redis://:***@127.0.0.1:" in unreachable
        assert "Redis unreachable at redis://:***@127.0.0.1:" in run.outputs["cli dlq-unreachable"]
        assert "redis://:***@127.0.0.1:" in run.outputs["cli inspect (wrong password)"]


class TestRedaction:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://:s3cretpw@redis:6379/0", "redis://:***@redis:6379/0"),
            ("rediss://app:pw@redis.internal:6380/1", "rediss://app:***@redis.internal:6380/1"),
            ("redis://localhost:6379/0", "redis://localhost:6379/0"),
            ("https://hook.eu1.make.com/abc123?x=1", "https://hook.eu1.make.com/***"),
            ("https://hook.eu1.make.com", "https://hook.eu1.make.com"),
            ("http://[::1", "***"),
        ],
    )
    def test_redact_url(self, url: str, shown: str) -> None:
        """Passwords are masked in any URL; an http(s) URL also loses its path and query."""
        assert redact_url(url) == shown

    def test_redact_urls_in_text(self) -> None:
        """Every http(s) URL in a text keeps only its host."""
        text = 'POST "https://hook.eu1.make.com/abc?x=1" failed; see http://h:8/p/q.'
        assert (
            redact_urls(text) == 'POST "https://hook.eu1.make.com/***" failed; see http://h:8/***'
        )

    def test_scrubber_masks_values_and_their_url_quoted_form(self) -> None:
        """Secret values (8+ characters) and their URL-quoted forms become ***."""
        scrubber = SecretScrubber(["pa@ss/word-1", "short"])
        line = "auth pa@ss/word-1 or pa%40ss%2Fword-1 (short stays)"
        assert scrubber(None, "info", line) == "auth *** or *** (short stays)"

    def test_configured_logging_masks_secrets_and_library_urls(self) -> None:
        """A secret in an event, and a library's line quoting a callback URL, come out masked
        (in a process of its own: logging set-up is process-wide)."""
        script = """
import logging, structlog
from agentlink.observe.logging import configure_logging
configure_logging("json", "info", secrets=["hunter2-hunter2"])
structlog.get_logger("t").error("x.failed", error="token hunter2-hunter2 refused")
logging.getLogger("some.library").warning("POST https://h.make.com/s3cr3t done")
logging.getLogger("httpx").info("HTTP Request: POST https://h.make.com/s3cr3t")
"""
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=True,
        )
        err = done.stderr
        assert "hunter2-hunter2" not in err
        assert "token *** refused" in err
        assert "s3cr3t" not in err
        assert "https://h.make.com/***" in err
        assert "HTTP Request" not in err  # httpx's request lines are off
