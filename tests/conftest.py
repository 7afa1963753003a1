"""Shared fixtures: a private redis-server per session, settings, API client, consumers.

Every test that touches Redis gets an empty database; tests that kill Redis start their own
server with ``fresh_redis``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import redis
from litestar.testing import TestClient

from agentlink.admin.devredis import RedisServer, free_port
from agentlink.api import create_app
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.support.settings import quick_settings

ROOT = Path(__file__).resolve().parent.parent
# Fixtures kept beside the helpers they serve, available to every test folder.
pytest_plugins = [
    "tests.support.sales_endpoint",
    "tests.support.callbacks",
    "tests.support.records",
]


# -- system tools the suites need ----------------------------------------------------------------

NEEDS = "needs "
"""How a skip for a missing system tool starts; the run's last line gathers them."""


def skip_without(package: str, tool: str) -> NoReturn:
    """Skip: ``tool`` (from the Debian package ``package``) is not installed."""
    pytest.skip(f"{NEEDS}{package}: {tool} is not installed")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Gather the skips into one line, printed last (``pytest_unconfigure``)."""
    files_by_package: dict[str, set[str]] = {}
    files_by_reason: dict[str, set[str]] = {}
    count = 0
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        where = report.nodeid.split("::")[0]
        count += 1
        if reason.startswith(NEEDS):
            package = reason.removeprefix(NEEDS).split(":")[0]
            files_by_package.setdefault(package, set()).add(where)
        else:
            files_by_reason.setdefault(reason, set()).add(where)
    if count:
        config.stash[_SKIP_LINE] = skip_line(count, files_by_package, files_by_reason)


def skip_line(
    count: int, files_by_package: dict[str, set[str]], files_by_reason: dict[str, set[str]]
) -> str:
    """One line: which suites skipped, why, and how to get what they need."""
    parts = []
    if files_by_package:
        packages = sorted(files_by_package)
        files = sorted(set().union(*files_by_package.values()))
        parts.append(
            f"{', '.join(files)} need {', '.join(packages)}, not installed here: as root, "
            "`make test` installs them with apt-get (or run `sudo .ci/system-deps` once)"
        )
    for reason, files in sorted(files_by_reason.items()):
        parts.append(f"{', '.join(sorted(files))}: {reason}")
    return f"SKIPPED {count} test(s): " + "; ".join(parts)


_SKIP_LINE = pytest.StashKey[str]()


def pytest_unconfigure(config: pytest.Config) -> None:
    """The skip line, after pytest's own summary: the last thing `make test` prints."""
    line = config.stash.get(_SKIP_LINE, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if line and reporter is not None:
        reporter.write_line(line, yellow=True, bold=True)


# -- Redis ----------------------------------------------------------------------------------------

NO_REDIS = (
    "redis-server is not installed, and every suite needs it: as root, `make test` installs it "
    "with apt-get (or run `sudo .ci/system-deps` once)"
)


def require_redis_server() -> str:
    """The path of redis-server. Without it the whole run stops (exit status 1): a run in
    which nearly every test skipped must not pass."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.exit(NO_REDIS, returncode=1)
    return binary


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop before any test runs when redis-server is missing: in the main process, so that
    a run over pytest-xdist workers ends the same way as a run in one process."""
    require_redis_server()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server (AOF on) for the whole session."""
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may kill and restart."""
    require_redis_server()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, with an empty database."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client on the (empty) test database, decoding to str."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def keys() -> Keys:
    """The default key names."""
    return Keys()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Settings for the test database, with reports written below ``tmp_path``."""
    return quick_settings(
        redis_url,
        tmp_path,
        "test",
        log_format="json",
        api_cache_s=0.0,  # tests change Redis between requests; production trusts a read 2 s
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Any]]:
    """The API, with its lifespan running, on the test database."""
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a subprocess needs to see ``settings``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AGENTLINK_") and k != "REDIS_URL"
    }
    env.update(
        REDIS_URL=settings.redis_url,
        AGENTLINK_KEY_PREFIX=settings.key_prefix,
        AGENTLINK_OUTPUT_DIR=str(settings.output_dir),
        AGENTLINK_CONSUMER_NAME=settings.consumer_name,
        AGENTLINK_LEASE_S=str(settings.lease_s),
        AGENTLINK_BLOCK_MS=str(settings.block_ms),
        AGENTLINK_RETRY_BASE_S=str(settings.retry_base_s),
        AGENTLINK_RETRY_MAX_S=str(settings.retry_max_s),
        AGENTLINK_MAX_DELIVERIES=str(settings.max_deliveries),
        AGENTLINK_MAX_ATTEMPTS=str(settings.max_attempts),
        AGENTLINK_SHUTDOWN_GRACE_S=str(settings.shutdown_grace_s),
        AGENTLINK_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Processes:
    """Subprocesses started by a test, stopped (SIGKILL if need be) when it ends."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        """Start ``python args…`` with its output in ``<tmp>/<name>.log``."""
        with (self.tmp_path / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, *args], env=env, stdout=log, stderr=log, cwd=ROOT
            )
        self.started.append(process)
        return process

    def consumer(self, settings: Settings, slot: int = 1, **env: str) -> subprocess.Popen[bytes]:
        """Start one consumer process (``python -m consumers --slot N``)."""
        return self.start(
            ["-m", "consumers", "--slot", str(slot)],
            settings_env(settings, **env),
            f"consumer-{slot}",
        )

    def api(self, settings: Settings, *args: str, **env: str) -> str:
        """Start ``agentlink api`` on a free port (extra CLI ``args``, environment ``env``)
        and wait until it is healthy; returns its base URL."""
        port = free_port()
        self.start(
            ["-m", "agentlink", "api", "--port", str(port), *args],
            settings_env(settings, **env),
            "api",
        )
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the API to answer /health")
        return base

    def log(self, name: str) -> str:
        """What a process wrote so far."""
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def events(self, name: str) -> list[dict[str, Any]]:
        """A process's JSON log lines so far, parsed (other lines skipped)."""
        return [json.loads(line) for line in self.log(name).splitlines() if line.startswith("{")]

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Start subprocesses that are killed when the test ends."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def wait_for(
    predicate: Callable[[], Any], timeout_s: float = 30.0, message: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {message}")
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    """Live child pids of ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def submit(
    client: TestClient[Any], suburb: str = "Manly", state: str = "NSW", kind: str = "agents"
) -> str:
    """POST a report request through the API; returns the job id."""
    response = client.post(f"/api/generate-{kind}-report", json={"suburb": suburb, "state": state})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def job_hash(r: redis.Redis, job_id: str) -> dict[str, str]:
    """The job hash as Redis holds it."""
    return r.hgetall(Keys().job(job_id))  # type: ignore[return-value]


def wait_status(
    r: redis.Redis, job_id: str, *statuses: str, timeout_s: float = 60.0
) -> dict[str, str]:
    """Wait until the job reaches one of ``statuses``; returns its hash."""
    return wait_for(  # type: ignore[no-any-return]
        lambda: (h := job_hash(r, job_id)).get("status") in statuses and h,
        timeout_s,
        f"job {job_id} to become {'/'.join(statuses)}",
    )
