"""A suite that cannot run here (nginx, Prometheus or Chromium missing) skips, and the run
ends with one line naming the suites skipped and how to get what they need; without
redis-server, which every suite needs, the run stops and fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NO_REDIS, ROOT, skip_line

NEEDS_TOOLS = """
from tests.conftest import skip_without


def test_behind_nginx():
    skip_without("nginx", "nginx")


def test_with_prometheus():
    skip_without("prometheus", "promtool")


def test_that_runs():
    assert True
"""


NEEDS_REDIS = """
def test_with_redis(r):
    assert r.ping()
"""


def run_suite(
    suite: Path, text: str, env: dict[str, str] | None = None, *, workers: int = 0
) -> subprocess.CompletedProcess[str]:
    """Write ``text`` as the test file ``suite`` and run it with the project's conftest, in
    one process or over ``workers`` pytest-xdist processes (as `make test` does)."""
    suite.write_text(text)
    plugins = ["-p", "tests.conftest", "-p", "no:cacheprovider", "-n", str(workers)]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, "-q", str(suite)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


class TestSkipLine:
    @pytest.mark.parametrize("workers", [0, 2])
    def test_the_run_ends_with_one_line_naming_suites_and_the_fix(
        self, tmp_path: Path, workers: int
    ) -> None:
        """Skips for missing tools come back as the last line of the run, with the fix."""
        done = run_suite(tmp_path / "test_needs_tools.py", NEEDS_TOOLS, workers=workers)
        assert done.returncode == 0, done.stdout + done.stderr
        last = done.stdout.strip().splitlines()[-1]
        assert last.startswith("SKIPPED 2 test(s): "), done.stdout
        assert "test_needs_tools.py need nginx, prometheus, not installed here" in last
        assert "`make test` installs them with apt-get" in last
        assert "sudo .ci/system-deps" in last

    def test_other_reasons_are_listed_by_suite(self) -> None:
        """A skip for another reason keeps its reason, next to the suites that share it."""
        line = skip_line(
            3,
            {"nginx": {"tests/deploy/test_nginx.py"}},
            {"Compose schema not found": {"tests/deploy/test_deploy.py"}},
        )
        assert line == (
            "SKIPPED 3 test(s): tests/deploy/test_nginx.py need nginx, not installed here: "
            "as root, `make test` installs them with apt-get (or run `sudo .ci/system-deps` once); "
            "tests/deploy/test_deploy.py: Compose schema not found"
        )


class TestWithoutRedis:
    @pytest.mark.parametrize("workers", [0, 2])
    def test_the_run_stops_and_fails(self, tmp_path: Path, workers: int) -> None:
        """No redis-server on the PATH: exit status 1 and the reason, not a run of skips."""
        empty = tmp_path / "bin"
        empty.mkdir()
        env = {**os.environ, "PATH": str(empty)}
        done = run_suite(tmp_path / "test_needs_redis.py", NEEDS_REDIS, env, workers=workers)
        assert done.returncode == 1, done.stdout + done.stderr
        assert NO_REDIS in done.stdout + done.stderr
