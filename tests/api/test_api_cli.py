"""`agentlink api` as a process: no keys means loopback only, and slow clients time out."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.parse

import httpx
import pytest

from agentlink.settings import Settings
from tests.conftest import ROOT, Processes, settings_env, wait_for


class TestBinding:
    def test_public_bind_without_keys_refuses_to_start(self, settings: Settings) -> None:
        """`--host 0.0.0.0` without AGENTLINK_API_KEYS exits 2 and says what to do."""
        done = subprocess.run(
            [sys.executable, "-m", "agentlink", "api", "--host", "0.0.0.0", "--port", "1"],
            env=settings_env(settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert "refusing to serve 0.0.0.0 without API keys" in done.stderr
        assert "--allow-no-auth" in done.stderr
        assert "AGENTLINK_API_KEYS" in done.stderr

    @pytest.mark.parametrize(
        ("args", "env"),
        [
            (["--allow-no-auth"], {}),
            ([], {"AGENTLINK_ALLOW_NO_AUTH": "true"}),
        ],
    )
    def test_explicit_allowance_starts_with_a_warning(
        self,
        settings: Settings,
        processes: Processes,
        args: list[str],
        env: dict[str, str],
    ) -> None:
        """The flag or AGENTLINK_ALLOW_NO_AUTH=true opens it, with a logged warning."""
        processes.api(settings, "--host", "0.0.0.0", *args, **env)
        [warning] = [e for e in processes.events("api") if e["event"] == "api.no_api_keys"]
        assert warning["exposed"] is True

    def test_keys_allow_a_public_bind_and_stay_out_of_the_logs(
        self, settings: Settings, processes: Processes
    ) -> None:
        """With keys the API serves 0.0.0.0 without a warning; no key is ever logged."""
        base = processes.api(
            settings, "--host", "0.0.0.0", AGENTLINK_API_KEYS="very-secret-key-1,very-secret-key-2"
        )
        ok = httpx.post(
            f"{base}/api/generate-agents-report",
            json={"suburb": "Manly", "state": "NSW"},
            headers={"Authorization": "Bearer very-secret-key-2"},
            timeout=5,
        )
        wrong = httpx.get(
            f"{base}/api/job-status/x", headers={"X-API-Key": "very-secret-key-3"}, timeout=5
        )
        assert (ok.status_code, wrong.status_code) == (202, 401)
        wait_for(lambda: "report.accepted" in processes.log("api"), 10, "the accept log line")
        log = processes.log("api")
        assert "api.no_api_keys" not in log
        assert "very-secret-key" not in log

    def test_loopback_without_keys_serves_and_warns(
        self, settings: Settings, processes: Processes
    ) -> None:
        """The default bind (127.0.0.1) needs no keys; the start still warns."""
        processes.api(settings)
        [warning] = [e for e in processes.events("api") if e["event"] == "api.no_api_keys"]
        assert warning["exposed"] is False


class TestSlowClients:
    def test_body_that_never_arrives_is_408(self, settings: Settings, processes: Processes) -> None:
        """A client that announces a body and stalls gets 408 after AGENTLINK_BODY_TIMEOUT_S."""
        base = processes.api(settings, AGENTLINK_BODY_TIMEOUT_S="1")
        port = urllib.parse.urlsplit(base).port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/generate-agents-report HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"sub'
            )
            chunks = []
            while chunk := sock.recv(4096):  # headers and body may come in separate reads
                chunks.append(chunk)
                if b"did not arrive" in b"".join(chunks):
                    break
            reply = b"".join(chunks).decode()
        assert reply.startswith("HTTP/1.1 408"), reply
        assert "did not arrive in 1 s" in reply  # AGENTLINK_BODY_TIMEOUT_S, not another one
        health = httpx.get(f"{base}/health", timeout=5)
        assert health.status_code == 200, "the API keeps serving others"
