"""``agentlink demo``: the whole pipeline on this machine, with nothing prepared.

It uses ``REDIS_URL`` if that answers, else starts a private ``redis-server`` (AOF on) in a
temporary folder; starts the API and a worker with two consumers as separate processes;
submits an agents and an agency report for Manly NSW over HTTP; waits for both; prints
their final status and where the PDFs are; and stops everything it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from agentlink.admin.devredis import RedisServer, free_port
from agentlink.errors import RedisCommandError, ServiceUnavailableError
from agentlink.jobs import Status
from agentlink.observe.redaction import redact_url
from agentlink.reports.harfbuzz import HARFBUZZ_SUBSET_HINT, harfbuzz_subset_available
from agentlink.settings import Settings

_TIMEOUT_S = 300.0
_FINISHED = frozenset(status.value for status in Status if status.finished)


def _redis_answers(url: str) -> bool:
    from agentlink.stream.connection import call, connect

    client = connect(url, timeout_s=2)
    try:
        return bool(call(client.ping))
    except (ServiceUnavailableError, RedisCommandError, OSError):
        return False
    finally:
        client.close()


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - our own loopback API
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_for_api(base: str, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"the API exited with code {api.returncode}")
        try:
            if _http("GET", f"{base}/health")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not become healthy within 60 s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _redis(state_dir: Path) -> tuple[str, RedisServer | None]:
    """REDIS_URL if it answers, else a private redis-server (installed if need be)."""
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("AGENTLINK_REDIS_URL")
    if redis_url and _redis_answers(redis_url):
        print(f"Using Redis at {redact_url(redis_url)} (REDIS_URL)")
        return redis_url, None
    if redis_url:
        print(
            f"REDIS_URL={redact_url(redis_url)} does not answer; starting a private Redis instead"
        )
    server = RedisServer(state_dir / "redis", install=True)
    try:
        server.start()
    except BaseException:
        server.stop()  # a server that never answered must not outlive the demo
        raise
    print(f"Started a private Redis on {server.url}, data in {server.directory}")
    return server.url, server


def run_demo(settings: Settings) -> int:
    """Run the demo; 0 only if both PDFs exist."""
    # A plain `kill` (or CI's timeout) must still stop everything the demo started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    state_dir = Path(tempfile.mkdtemp(prefix="agentlink-demo-"))
    server: RedisServer | None = None
    processes: list[subprocess.Popen[bytes]] = []
    try:
        redis_url, server = _redis(state_dir)
        if not harfbuzz_subset_available():
            print(f"Note: {HARFBUZZ_SUBSET_HINT}")
        output_dir = settings.output_dir.resolve()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "AGENTLINK_KEY_PREFIX": os.environ.get("AGENTLINK_KEY_PREFIX", "agentlink-demo"),
            "AGENTLINK_OUTPUT_DIR": str(output_dir),
            "AGENTLINK_CONSUMER_NAME": f"demo-{socket.gethostname()}-{os.getpid()}",
            "AGENTLINK_LOG_FORMAT": os.environ.get("AGENTLINK_LOG_FORMAT", "console"),
            # The demo's own lines tell the story; the services speak up only on errors.
            "AGENTLINK_LOG_LEVEL": os.environ.get("AGENTLINK_LOG_LEVEL", "error"),
        }
        python = sys.executable
        processes.append(
            subprocess.Popen([python, "-m", "agentlink", "api", "--port", str(port)], env=env)
        )
        processes.append(
            subprocess.Popen([python, "-m", "consumers", "--concurrency", "2"], env=env)
        )
        _wait_for_api(base, processes[0])
        print(f"API on {base}; worker with 2 consumers started")

        jobs: dict[str, str] = {}
        for kind in ("agents", "agency"):
            code, body = _http(
                "POST", f"{base}/api/generate-{kind}-report", {"suburb": "Manly", "state": "NSW"}
            )
            if code != 202:
                print(f"POST /api/generate-{kind}-report answered {code}: {body}")
                return 1
            jobs[kind] = body["job_id"]
            print(f"Submitted the {kind} report for Manly NSW: job {body['job_id']}", end="")
            print(f" ({body['status']})")

        finals = _wait_for_jobs(base, jobs)
        ok = True
        print()
        for kind, record in finals.items():
            result = record.get("result") or {}
            path = output_dir / result["path"] if result.get("path") else None
            exists = path is not None and path.is_file()
            ok = ok and exists and record.get("status") == "completed"
            print(
                f"{kind:>7} report: {record.get('status')}  attempts={record.get('attempts')}"
                + (f"  error={record.get('error')}" if record.get("error") else "")
            )
            if exists:
                print(
                    f"         PDF: {path} ({result.get('pages')} pages, {result.get('bytes')} B)"
                )
        print()
        print(
            "Demo finished: both PDFs are ready." if ok else "Demo FAILED: see the statuses above."
        )
        return 0 if ok else 1
    finally:
        _stop(processes)
        if server is not None:
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def _wait_for_jobs(
    base: str, jobs: dict[str, str], timeout_s: float = _TIMEOUT_S
) -> dict[str, dict[str, Any]]:
    """The record of each job (by kind) once it is finished, or a stand-in after ``timeout_s``."""
    finals: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(finals) < len(jobs) and time.monotonic() < deadline:
        for kind, job_id in jobs.items():
            if kind in finals:
                continue
            code, record = _http("GET", f"{base}/api/job-status/{job_id}")
            if code == 200 and record.get("status") in _FINISHED:
                finals[kind] = record
        time.sleep(0.3)
    for kind, job_id in jobs.items():
        finals.setdefault(kind, {"status": f"not finished after {timeout_s:g} s", "job_id": job_id})
    return finals
