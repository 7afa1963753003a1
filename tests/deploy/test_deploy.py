"""The deployment files (docker-compose.yml, ops/, .env.example), checked without Docker.

The target host runs ``docker compose``, but nothing here can build or run an image, so these
tests check the files statically: the compose file against the Compose Specification's JSON
schema, then what the schema cannot see (health checks, memory limits that fit a 4 GB CX22, a
worker that can scale, every setting passed through, a durable Redis, a non-root image).
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
import json
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
import yaml

from agentlink.env import variables
from agentlink.settings import Settings
from tests.conftest import skip_without
from tests.support.docker import dockerfile_instructions, dockerfile_stages

ROOT = Path(__file__).resolve().parents[2]
# CI checks the repository out next to shared/, which holds the Compose Specification schema.
COMPOSE_SCHEMA = ROOT.parent / "shared/schemas/compose-spec.json"
COMPOSE_FILE = ROOT / "docker-compose.yml"
REDIS_CONF = ROOT / "ops/redis/redis.conf"
PROMETHEUS_CONF = ROOT / "ops/prometheus/prometheus.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
# The modules that declare settings: every variable they name must be in the table.
SETTINGS_MODULES = (ROOT / "agentlink/settings.py", ROOT / "agentlink/report_settings.py")

MIB = 1024**2
GIB = 1024**3
HOST_RAM_BYTES = 4 * GIB  # Hetzner CX22
HOST_RESERVE_BYTES = 512 * MIB  # kernel, dockerd, page cache: not for containers
APP_SERVICES = ("api", "worker")
SHUTDOWN_MARGIN_S = 5.0  # time a worker needs after its grace period to hand its job back

_SETTING_NAME = re.compile(r"(?<![A-Z_])(?:AGENTLINK_[A-Z_]+|DROPBOX_[A-Z_]+|REDIS_URL)(?![A-Z_])")
# Read by the Dropbox SDK itself, not by Settings (a test server's host).
_SDK_VARIABLES = frozenset({"DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST"})
_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)
_MEMORY = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[bkmgt]?)b?$", re.IGNORECASE)
_DURATION_PART = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|us|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
_COMPILERS = re.compile(
    r"(?<![\w.-])(build-essential|(?:gcc|g\+\+|clang)(?:-\d+)?|cc|make|libc6-dev|python3-dev)"
    r"(?![\w.+-])"
)
_LOOPBACK = ("127.0.0.1:", "[::1]:", "localhost:")


# -- loading ------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as Compose sees it before interpolation (anchors and merges resolved)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file."""
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    assert found, "docker-compose.yml defines no services"
    return found


def settings_variables() -> set[str]:
    """Every variable the settings table declares, aliases included (``agentlink.env``)."""
    names = {name for v in variables(Settings) for name in (v.name, *v.aliases)}
    # Guards the table walk itself: AgentLink reads well over fifty variables.
    assert len(names) >= 50, f"found only {sorted(names)} in the settings table"
    return names


def mentioned_variables() -> set[str]:
    """Every AGENTLINK_*, DROPBOX_* and REDIS_URL name the settings modules spell out
    (``AGENTLINK_BRAND_*`` and other prefixes ending in ``_`` left aside)."""
    return {
        name
        for module in SETTINGS_MODULES
        for name in _SETTING_NAME.findall(module.read_text())
        if not name.endswith("_")
    }


def env_example() -> dict[str, str]:
    """The NAME=value assignments of .env.example (comments and blank lines skipped)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        assert sep, f".env.example: not a NAME=value line: {line!r}"
        values[name.strip()] = value.strip()
    return values


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as a list of KEY=VALUE."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.partition("=")[::2] for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME-default}`` and ``${NAME:-default}`` against ``env``."""

    def one(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        if name in env and (env[name] != "" or op != ":-"):
            return env[name]
        return default if op else ""

    return _INTERPOLATION.sub(one, value)


def memory_bytes(value: str | float) -> int:
    """``"512M"``, ``"1g"``, ``"1.5GB"`` or a number of bytes, in bytes."""
    if isinstance(value, int | float):
        return int(value)
    match = _MEMORY.match(value.strip())
    assert match, f"unreadable memory size {value!r}"
    power = " kmgt".index(match["unit"].lower() or " ")
    return int(float(match["number"]) * 1024**power)


def seconds(duration: str) -> float:
    """A Compose duration (``"45s"``, ``"1m30s"``) in seconds."""
    parts = list(_DURATION_PART.finditer(duration))
    assert parts, f"unreadable duration {duration!r}"
    assert "".join(p[0] for p in parts) == duration.strip(), f"unreadable duration {duration!r}"
    return sum(float(p["number"]) * _DURATION_UNITS[p["unit"]] for p in parts)


def memory_limit(service: Mapping[str, Any]) -> int | None:
    """The service's hard memory limit in bytes (deploy.resources.limits or mem_limit)."""
    limit = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
    limit = limit if limit is not None else service.get("mem_limit")
    return None if limit is None else memory_bytes(limit)


def replicas(service: Mapping[str, Any]) -> int:
    """How many containers ``docker compose up`` starts for the service."""
    return int(service.get("deploy", {}).get("replicas", 1))


def volume_targets(service: Mapping[str, Any]) -> dict[str, str]:
    """Mount target -> source of a service's volumes (short or long syntax)."""
    targets = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.rsplit(":", 1)[0] if rest.endswith((":ro", ":rw")) else rest
        else:
            source, target = volume.get("source", ""), volume["target"]
        targets[target] = source
    return targets


def redis_directives() -> dict[str, str]:
    """redis.conf's directives (the last occurrence wins, as in Redis)."""
    directives = {}
    for line in REDIS_CONF.read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition(" ")
            directives[key.lower()] = value.strip().strip('"')
    return directives


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (relative to the context) out of the build context.

    Approximate on purpose (``*`` also crosses ``/`` here), so it errs towards "excluded".
    """
    excluded = False
    components = path.split("/")
    prefixes = ["/".join(components[: i + 1]) for i in range(len(components))]
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").lstrip("/").rstrip("/")
        candidates = [pattern, pattern.removeprefix("**/")]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            excluded = not negated
    return excluded


@contextlib.contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess, its output in ``log``, killed when the ``with`` block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


# -- the tests ----------------------------------------------------------------------------------


class TestComposeSchema:
    def test_compose_file_is_valid_against_the_compose_specification(
        self, compose: dict[str, Any]
    ) -> None:
        """docker-compose.yml satisfies the Compose Specification's JSON schema."""
        if not COMPOSE_SCHEMA.is_file():
            pytest.skip(f"Compose schema not found at {COMPOSE_SCHEMA} (shared/ not checked out)")
        schema = json.loads(COMPOSE_SCHEMA.read_text())
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(compose), key=lambda e: str(list(e.absolute_path)))
        problems = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
        ]
        assert not problems, "docker-compose.yml breaks the Compose schema:\n" + "\n".join(problems)


class TestServices:
    def test_the_stack_has_its_four_services(self, services: dict[str, Any]) -> None:
        """Redis, the API, the workers and Prometheus are all defined."""
        assert {"redis", "api", "worker", "prometheus"} <= services.keys()

    def test_every_service_has_a_health_check(self, services: dict[str, Any]) -> None:
        """Each service declares a health check that actually runs a command."""
        for name, service in services.items():
            check = service.get("healthcheck")
            assert check, f"service {name} has no healthcheck"
            assert not check.get("disable"), f"service {name} disables its healthcheck"
            test = check.get("test")
            command = test if isinstance(test, list) else ["CMD-SHELL", test]
            assert command[0] in {"CMD", "CMD-SHELL"}, f"service {name}: healthcheck {test!r}"
            assert len(command) > 1, f"service {name}: healthcheck test {test!r} runs nothing"

    def test_health_checks_probe_what_the_services_serve(self, services: dict[str, Any]) -> None:
        """Redis must answer PONG; the API is probed on its --port, the worker on its metrics."""
        redis_check = services["redis"]["healthcheck"]["test"]
        redis_check = redis_check if isinstance(redis_check, str) else " ".join(redis_check)
        # redis-cli exits 0 on error replies too (LOADING, NOAUTH): only PONG means ready.
        assert "ping" in redis_check.lower(), redis_check
        assert "PONG" in redis_check, f"{redis_check!r} passes while Redis is still loading"
        api_command = services["api"]["command"]
        port = api_command[api_command.index("--port") + 1]
        assert f":{port}/health" in " ".join(services["api"]["healthcheck"]["test"])
        worker_check = " ".join(services["worker"]["healthcheck"]["test"])
        assert "AGENTLINK_METRICS_PORT" in worker_check
        worker_env = environment(services["worker"])
        assert interpolate(worker_env["AGENTLINK_METRICS_PORT"], {}).isdigit(), (
            "the worker's healthcheck needs AGENTLINK_METRICS_PORT to default to a port"
        )

    def test_every_service_has_a_memory_limit(self, services: dict[str, Any]) -> None:
        """Each service has a hard memory limit, so one runaway cannot starve the host."""
        missing = [name for name, service in services.items() if not memory_limit(service)]
        assert not missing, f"no memory limit on: {', '.join(missing)}"

    def test_memory_limits_fit_the_host(self, services: dict[str, Any]) -> None:
        """All limits, times their replicas, fit a CX22 with room for the OS."""
        total = sum((memory_limit(s) or 0) * replicas(s) for s in services.values())
        budget = HOST_RAM_BYTES - HOST_RESERVE_BYTES
        assert total <= budget, f"limits sum to {total / MIB:.0f} MiB > {budget / MIB:.0f} MiB"

    def test_worker_can_be_scaled(self, services: dict[str, Any]) -> None:
        """Workers have no fixed name, hostname or host port that replicas would fight over."""
        worker = services["worker"]
        assert "container_name" not in worker
        assert "hostname" not in worker, "a fixed hostname makes replicas share consumer names"
        assert not worker.get("ports"), "workers publish no ports; Prometheus reaches them inside"
        consumer_name = environment(worker).get("AGENTLINK_CONSUMER_NAME", "")
        assert interpolate(consumer_name, {}) == "", (
            "AGENTLINK_CONSUMER_NAME must default to empty (the container's hostname)"
        )

    def test_worker_stops_after_its_shutdown_grace(self, services: dict[str, Any]) -> None:
        """Docker waits longer than AGENTLINK_SHUTDOWN_GRACE_S before it kills a worker."""
        worker = services["worker"]
        assert "stop_grace_period" in worker, "the worker needs a stop_grace_period (default 10s)"
        stop_s = seconds(worker["stop_grace_period"])
        configured = environment(worker)["AGENTLINK_SHUTDOWN_GRACE_S"]
        for source, env in (("compose default", {}), (".env.example", env_example())):
            grace = interpolate(configured, env)
            grace_s = float(grace) if grace else Settings().shutdown_grace_s
            assert grace_s + SHUTDOWN_MARGIN_S <= stop_s, (
                f"{source}: grace {grace_s} s leaves under {SHUTDOWN_MARGIN_S} s "
                f"before stop_grace_period {worker['stop_grace_period']}"
            )

    def test_api_and_worker_share_the_reports_volume_at_the_output_dir(
        self, compose: dict[str, Any], services: dict[str, Any]
    ) -> None:
        """The API serves PDFs from the very folder the workers write them to."""
        sources = set()
        for name in APP_SERVICES:
            output_dir = environment(services[name]).get("AGENTLINK_OUTPUT_DIR")
            assert output_dir, f"{name}: AGENTLINK_OUTPUT_DIR is not set"
            mounts = volume_targets(services[name])
            assert output_dir in mounts, f"{name}: nothing is mounted at {output_dir}"
            sources.add(mounts[output_dir])
        assert len(sources) == 1, f"api and worker mount different volumes: {sources}"
        (source,) = sources
        assert source in (compose.get("volumes") or {}), f"{source} is not a named volume"
        outputs = {environment(services[n])["AGENTLINK_OUTPUT_DIR"] for n in APP_SERVICES}
        assert len(outputs) == 1, f"api and worker use different output dirs: {outputs}"

    def test_app_services_wait_for_a_healthy_redis(self, services: dict[str, Any]) -> None:
        """The API and the workers start once Redis answers PING."""
        for name in APP_SERVICES:
            depends_on = services[name].get("depends_on", {})
            assert isinstance(depends_on, dict), f"{name}: depends_on has no conditions"
            assert depends_on.get("redis", {}).get("condition") == "service_healthy", name

    def test_only_nginx_publishes_public_ports(self, services: dict[str, Any]) -> None:
        """Redis and the API publish nothing (nginx is the way in); the rest is loopback."""
        assert not services["redis"].get("ports"), "never publish Redis (no password)"
        assert not services["api"].get("ports"), "the API is reached through nginx"
        for name in services.keys() - {"nginx"}:
            for port in services[name].get("ports", []):
                published = port if isinstance(port, str) else port.get("host_ip", "") + ":"
                assert published.startswith(_LOOPBACK), f"{name} publishes {port!r} publicly"

    def test_the_api_trusts_forwarded_headers_from_nginx_only(
        self, compose: dict[str, Any], services: dict[str, Any]
    ) -> None:
        """FORWARDED_ALLOW_IPS is nginx's fixed address, in the network's subnet but outside
        the range other containers are given: no other container can claim it."""
        trusted = environment(services["api"])["FORWARDED_ALLOW_IPS"]
        fixed = services["nginx"]["networks"]["default"]["ipv4_address"]
        [pool] = compose["networks"]["default"]["ipam"]["config"]
        subnet = ipaddress.ip_network(pool["subnet"])
        dynamic = ipaddress.ip_network(pool["ip_range"])
        assert trusted == fixed, f"the api trusts {trusted!r}, nginx is at {fixed!r}"
        assert ipaddress.ip_address(fixed) in subnet
        assert dynamic.subnet_of(subnet)  # type: ignore[arg-type]
        assert ipaddress.ip_address(fixed) not in dynamic
        for name in services.keys() - {"nginx"}:
            assert "networks" not in services[name], f"{name} leaves the default network"


class TestEnvironment:
    def test_settings_modules_read_nothing_beside_the_table(self) -> None:
        """A variable the settings modules name is declared in the table, so the checks
        below see it (the SDK's own DROPBOX_API_HOST is not ours)."""
        stray = mentioned_variables() - settings_variables()
        assert not stray, f"named but not declared: {', '.join(sorted(stray))}"

    def test_env_example_lists_every_setting(self) -> None:
        """Every variable settings.py reads has a line in .env.example."""
        missing = settings_variables() - env_example().keys()
        assert not missing, f".env.example lacks: {', '.join(sorted(missing))}"

    def test_env_example_explains_every_variable(self) -> None:
        """Each assignment (or group of adjacent ones) sits under a comment."""
        lines = ENV_EXAMPLE.read_text().splitlines()
        for index, line in enumerate(lines):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            above = index - 1
            while above >= 0 and lines[above].strip() and not lines[above].lstrip().startswith("#"):
                above -= 1
            assert above >= 0, f".env.example line {index + 1} ({line!r}) has no comment"
            assert lines[above].lstrip().startswith("#"), (
                f".env.example line {index + 1} ({line!r}) has no comment"
            )

    def test_env_example_values_are_valid_settings(self) -> None:
        """Settings.from_env accepts .env.example as it stands."""
        settings = Settings.from_env(env_example())
        assert settings.storage == "local"

    def test_api_and_worker_receive_every_setting(self, services: dict[str, Any]) -> None:
        """docker-compose.yml passes every setting to both the API and the workers."""
        wanted = settings_variables()
        for name in APP_SERVICES:
            missing = wanted - environment(services[name]).keys()
            assert not missing, f"{name} does not get: {', '.join(sorted(missing))}"

    def test_settings_come_from_the_env_file(self, services: dict[str, Any]) -> None:
        """Each setting is ``${SAME_NAME:-default}``, so .env can change it; an AGENTLINK_*
        variable that is no setting is a typo."""
        wanted = settings_variables()
        for name in APP_SERVICES:
            for variable, value in environment(services[name]).items():
                if variable not in wanted:
                    assert not _SETTING_NAME.fullmatch(variable) or variable in _SDK_VARIABLES, (
                        f"{name}: {variable} is no setting of AgentLink (a typo?)"
                    )
                    continue
                match = _INTERPOLATION.fullmatch(value)
                assert match, f"{name}: {variable}={value!r} does not read .env"
                assert match["name"] == variable, (
                    f"{name}: {variable}={value!r} does not read ${{{variable}}} from .env"
                )

    def test_compose_defaults_are_valid_settings(self, services: dict[str, Any]) -> None:
        """With no .env at all, the containers' environment passes Settings.from_env."""
        for name in APP_SERVICES:
            env = {k: interpolate(v, {}) for k, v in environment(services[name]).items()}
            settings = Settings.from_env(env)
            assert settings.redis_url.startswith("redis://redis:"), settings.redis_url


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
        binary = shutil.which("redis-server")
        if binary is None:
            skip_without("redis-server", "redis-server")
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
