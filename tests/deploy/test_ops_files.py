"""The files beside the compose file, checked without Docker: redis.conf (durable, within its
container, accepted by a real redis-server), the Dockerfile (two stages, non-root, no
compilers) and Prometheus's scrape configuration."""

from __future__ import annotations

import re
import shlex
import socket
import time
from pathlib import Path
from typing import Any

import redis
import yaml

from tests.conftest import require_redis_server
from tests.support.compose import (
    MIB,
    PROMETHEUS_CONF,
    REDIS_CONF,
    ROOT,
    dockerignore_excludes,
    environment,
    interpolate,
    memory_bytes,
    memory_limit,
    redis_directives,
    running,
    volume_targets,
)
from tests.support.docker import dockerfile_instructions, dockerfile_stages

_COMPILERS = re.compile(
    r"(?<![\w.-])(build-essential|(?:gcc|g\+\+|clang)(?:-\d+)?|cc|make|libc6-dev|python3-dev)"
    r"(?![\w.+-])"
)


class TestRedisConf:
    def test_redis_keeps_every_accepted_request(self) -> None:
        """AOF on, fsynced at least every second, and never evicting keys."""
        conf = redis_directives()
        assert conf.get("appendonly") == "yes"
        assert conf.get("appendfsync") in {"everysec", "always"}
        assert conf.get("maxmemory-policy") == "noeviction"

    def test_redis_data_lives_on_the_volume(self, services: dict[str, Any]) -> None:
        """redis.conf's dir is where compose mounts a named volume, and the file is mounted."""
        conf = redis_directives()
        mounts = volume_targets(services["redis"])
        assert conf.get("dir") in mounts, f"dir {conf.get('dir')} is not a mounted volume"
        command = services["redis"].get("command", [])
        command = shlex.split(command) if isinstance(command, str) else command
        conf_paths = [arg for arg in command if arg.endswith(".conf")]
        assert conf_paths, "redis-server is not given a conf file"
        assert conf_paths[0] in mounts, f"{conf_paths[0]} is not mounted into the container"
        assert mounts[conf_paths[0]].endswith("ops/redis/redis.conf")

    def test_maxmemory_fits_in_the_container(self, services: dict[str, Any]) -> None:
        """Redis's own cap is below its container limit, leaving room for a rewrite fork."""
        maxmemory = memory_bytes(redis_directives()["maxmemory"])
        limit = memory_limit(services["redis"])
        assert limit is not None
        assert 0 < maxmemory <= limit - 128 * MIB, (
            f"maxmemory {maxmemory / MIB:.0f} MiB vs container limit {limit / MIB:.0f} MiB"
        )

    def test_redis_server_accepts_the_file(self, tmp_path: Path) -> None:
        """A real redis-server starts from the file and reports the durable settings."""
        binary = require_redis_server()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # Redis changes into `dir` while it parses the file, so /data would have to exist here:
        # move only that line into the test's folder. Loopback and a free port, as overrides.
        conf = tmp_path / "redis.conf"
        conf.write_text(
            re.sub(r"(?m)^dir .*$", f'dir "{tmp_path}"', REDIS_CONF.read_text(), count=1)
        )
        log = tmp_path / "redis.log"
        args = [binary, str(conf), "--bind", "127.0.0.1", "--port", str(port)]
        with running(args, log) as process:
            client = redis.Redis(port=port, decode_responses=True, socket_timeout=2)
            deadline = time.monotonic() + 15
            while True:
                assert process.poll() is None, f"redis-server refused the file:\n{log.read_text()}"
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not answer"
                    time.sleep(0.05)
            config = client.config_get("*")
            client.close()
        assert config["appendonly"] == "yes"
        assert config["maxmemory-policy"] == "noeviction"
        assert int(config["maxmemory"]) == memory_bytes(redis_directives()["maxmemory"])


class TestDockerfile:
    def test_image_is_built_in_two_stages(self) -> None:
        """A builder stage makes the venv; the final stage copies it from there."""
        stages = dockerfile_stages()
        assert len(stages) >= 2
        builder = stages[0][0][1].split()
        assert len(builder) == 3, "the first stage is not named (FROM image AS name)"
        assert builder[1].upper() == "AS", "the first stage is not named (FROM image AS name)"
        copies = [args for keyword, args in stages[-1] if keyword == "COPY"]
        assert any(f"--from={builder[2]}" in args for args in copies)

    def test_final_stage_is_slim_bookworm_with_weasyprint_libraries(self) -> None:
        """The final image is python:3.11-slim-bookworm plus WeasyPrint's runtime libraries."""
        instructions = dockerfile_instructions()
        args = {
            name: default
            for keyword, value in instructions
            if keyword == "ARG"
            for name, _, default in [value.partition("=")]
        }
        final = dockerfile_stages()[-1]
        image = interpolate(final[0][1].split()[0], args)
        assert image == "python:3.11-slim-bookworm", image
        runs = " ".join(value for keyword, value in final if keyword == "RUN")
        for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0"):
            assert package in runs, f"the final stage does not install {package}"
        assert "fonts-dejavu-core" in runs

    def test_final_stage_has_no_compilers(self) -> None:
        """Nothing in the final stage installs a compiler or build tools."""
        final = dockerfile_stages()[-1]
        found = [
            match.group(1)
            for keyword, value in final
            if keyword == "RUN"
            for match in _COMPILERS.finditer(value)
        ]
        assert not found, f"the final stage installs {found}"

    def test_final_stage_runs_as_a_non_root_user(self) -> None:
        """The last USER of the final stage is neither root nor uid 0."""
        users = [value for keyword, value in dockerfile_stages()[-1] if keyword == "USER"]
        assert users, "the final stage has no USER, so it runs as root"
        user = users[-1].split(":")[0].strip()
        assert user not in {"root", "0", ""}, f"USER {users[-1]} is root"

    def test_entrypoint_and_health_check(self) -> None:
        """The image runs the agentlink console script and checks the API's /health."""
        final = dict(dockerfile_stages()[-1])
        assert final.get("ENTRYPOINT") == '["agentlink"]'
        assert "HEALTHCHECK" in final
        assert "/health" in final["HEALTHCHECK"]

    def test_copied_sources_exist_and_reach_the_build_context(self) -> None:
        """Every COPY source is in the repository and not excluded by .dockerignore."""
        sources = []
        for keyword, value in dockerfile_instructions():
            if keyword != "COPY" or "--from=" in value:
                continue
            parts = [p for p in value.split() if not p.startswith("--")]
            sources += parts[:-1]
        assert sources, "the Dockerfile copies nothing from the context"
        # package data is what a careless ignore pattern (e.g. **/reports) would drop
        sources += [
            "agentlink/reports/templates/report.html",
            "agentlink/reports/data/sample_sales.csv",
        ]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            assert not dockerignore_excludes(source), f".dockerignore excludes {source}"

    def test_dockerignore_keeps_local_state_out(self) -> None:
        """The venv, git history, secrets, reports and caches never enter the context."""
        for path in (".venv", ".git", ".env", "reports", ".mypy_cache", ".pytest_cache"):
            assert dockerignore_excludes(path), f".dockerignore does not exclude {path}"
        assert dockerignore_excludes("agentlink/__pycache__/cli.cpython-311.pyc")


class TestPrometheus:
    def test_scrapes_the_api_and_every_worker(self, services: dict[str, Any]) -> None:
        """api:8000/metrics statically, workers by DNS on their metrics port."""
        config = yaml.safe_load(PROMETHEUS_CONF.read_text())
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        api_targets = [t for sc in jobs["api"]["static_configs"] for t in sc["targets"]]
        assert "api:8000" in api_targets
        assert jobs["api"].get("metrics_path", "/metrics") == "/metrics"
        (worker_sd,) = jobs["worker"]["dns_sd_configs"]
        assert "worker" in worker_sd["names"]
        metrics_port = interpolate(environment(services["worker"])["AGENTLINK_METRICS_PORT"], {})
        assert str(worker_sd["port"]) == metrics_port
        for job in jobs.values():
            hosts = [t.split(":")[0] for sc in job.get("static_configs", []) for t in sc["targets"]]
            hosts += [n for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
            assert set(hosts) <= services.keys(), f"{job['job_name']} scrapes unknown {hosts}"

    def test_prometheus_loads_this_file(self, services: dict[str, Any]) -> None:
        """Compose mounts ops/prometheus/prometheus.yml where the command points."""
        prometheus = services["prometheus"]
        mounts = volume_targets(prometheus)
        flags = [a for a in prometheus.get("command", []) if a.startswith("--config.file=")]
        path = flags[0].partition("=")[2] if flags else "/etc/prometheus/prometheus.yml"
        assert mounts.get(path, "").endswith("ops/prometheus/prometheus.yml")
