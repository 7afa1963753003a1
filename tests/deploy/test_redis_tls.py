"""``rediss://`` with a password, as against a managed Redis: API, consumer and CLI.

A private ``redis-server`` listens with TLS only (a CA and certificate made per run with
``openssl``) and requires a password; AgentLink connects as an ACL user limited to its own
key prefix, exactly as the operator guide (ops/README.md) sets one up, so a key outside the prefix
would fail too. Skipped only when the installed redis-server was built without TLS.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.admin.devredis import free_port
from agentlink.api import create_app
from agentlink.settings import Settings
from tests.conftest import Processes, require_redis_server, submit, wait_for
from tests.support.cli import run_cli
from tests.support.tls import Certificates, make_certificates

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "admin-secret"
USER, PASSWORD = "agentlink", "p@ss/word:1"  # characters a URL must percent-encode


@dataclass(frozen=True)
class TlsRedis:
    """A TLS-only redis-server and what a client needs to reach it."""

    port: int
    certificates: Certificates

    def url(self, *, user: str = USER, password: str = PASSWORD, ca: bool = True) -> str:
        """``rediss://user:password@127.0.0.1:port/0`` (trusting the test CA unless not)."""
        auth = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
        query = f"?ssl_ca_certs={self.certificates.ca}" if ca else ""
        return f"rediss://{auth}@127.0.0.1:{self.port}/0{query}"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    """redis-server with only a TLS port, a password, and an ACL user for ``agentlink:*``."""
    binary = require_redis_server()
    directory = tmp_path_factory.mktemp("redis-tls")
    certificates = make_certificates(directory / "tls")
    port = free_port()
    log = directory / "redis.log"
    args = [
        binary,
        *("--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
        *("--tls-cert-file", str(certificates.cert), "--tls-key-file", str(certificates.key)),
        *("--tls-ca-cert-file", str(certificates.ca), "--tls-auth-clients", "no"),
        *("--requirepass", ADMIN_PASSWORD, "--dir", str(directory)),
        *("--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    server = TlsRedis(port, certificates)
    admin = redis.Redis.from_url(server.url(user="default", password=ADMIN_PASSWORD))
    try:

        def answering() -> bool:
            if process.poll() is not None:
                if "TLS" in log.read_text():
                    pytest.skip(f"redis-server without TLS support: {log.read_text()[-300:]}")
                pytest.fail(f"redis-server exited:\n{log.read_text()}")
            try:
                return bool(admin.ping())
            except redis.exceptions.ConnectionError:
                return False

        wait_for(answering, 15, "redis-server to answer over TLS")
        # the operator guide's per-environment ACL user, for the default prefix
        rules = ["on", f">{PASSWORD}", "~agentlink:*", "+@all", "-flushall", "-flushdb"]
        admin.execute_command("ACL", "SETUSER", USER, *rules)
        yield server
    finally:
        admin.close()
        process.terminate()
        process.wait(10)


@pytest.fixture
def tls_settings(tls_redis: TlsRedis, settings: Settings) -> Iterator[Settings]:
    """The test settings, pointed at the TLS server (its keys deleted afterwards)."""
    yield replace(settings, redis_url=tls_redis.url())
    admin = redis.Redis.from_url(tls_redis.url(user="default", password=ADMIN_PASSWORD))
    admin.flushall()
    admin.close()


class TestRedisOverTls:
    def test_a_job_goes_through_api_and_consumer_over_tls(
        self, tls_settings: Settings, processes: Processes
    ) -> None:
        """rediss:// with an ACL user: queued by the API, completed by a consumer process."""
        with TestClient(app=create_app(tls_settings)) as client:
            assert client.get("/health").json() == {"status": "ok", "redis": "ok"}
            job_id = submit(client)
            processes.consumer(tls_settings)

            def finished() -> dict[str, Any] | None:
                record: dict[str, Any] = client.get(f"/api/job-status/{job_id}").json()
                return record if record["status"] in {"completed", "failed", "dead"} else None

            record = wait_for(finished, 60, "the job to finish over TLS")
        assert record["status"] == "completed", (record, processes.log("consumer-1"))
        assert (tls_settings.output_dir / record["result"]["path"]).is_file()

    def test_the_operator_cli_works_over_tls(self, tls_settings: Settings) -> None:
        """`agentlink inspect --json` reads the queue through the same rediss:// URL."""
        with TestClient(app=create_app(tls_settings)) as client:
            submit(client)
        done = run_cli(tls_settings, "inspect", "--json")
        assert done.returncode == 0, done.stderr
        snapshot = json.loads(done.stdout)
        assert snapshot["length"] == 1
        assert snapshot["lag"] == 1

    def test_the_certificate_is_verified_and_the_password_required(
        self, tls_redis: TlsRedis
    ) -> None:
        """No CA: the handshake fails; a wrong password is refused; the ACL user is fenced."""
        unverified = redis.Redis.from_url(tls_redis.url(ca=False), socket_timeout=5)
        with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
            unverified.ping()
        wrong = redis.Redis.from_url(tls_redis.url(password="wrong"), socket_timeout=5)
        with pytest.raises(redis.exceptions.AuthenticationError):
            wrong.ping()
        outside = redis.Redis.from_url(tls_redis.url(), socket_timeout=5)
        with pytest.raises(redis.exceptions.NoPermissionError):
            outside.set("staging:reports", "x")  # the ACL user sees its own prefix only
        with pytest.raises(redis.exceptions.NoPermissionError):
            outside.flushall()
        for client in (unverified, wrong, outside):
            client.close()
