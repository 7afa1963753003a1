"""The deployment files (docker-compose.yml, ops/, .env.example), checked without Docker.

The target host runs ``docker compose``, but nothing here can build or run an image, so these
tests check the files statically: the compose file against the Compose Specification's JSON
schema, then what the schema cannot see (health checks, memory limits that fit a 4 GB CX22, a
worker that can scale, every setting passed through, a durable Redis, a non-root image).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import jsonschema

from agentlink.settings import Settings
from tests.conftest import ROOT
from tests.support.compose import (
    APP_SERVICES,
    COMPOSE_SCHEMA,
    ENV_EXAMPLE,
    HOST_RAM_BYTES,
    HOST_RESERVE_BYTES,
    INTERPOLATION,
    MIB,
    SDK_VARIABLES,
    SETTING_NAME,
    SHUTDOWN_MARGIN_S,
    env_example,
    environment,
    interpolate,
    memory_limit,
    mentioned_variables,
    replicas,
    seconds,
    settings_variables,
    volume_targets,
)

# -- the tests ----------------------------------------------------------------------------------


_LOOPBACK = ("127.0.0.1:", "[::1]:", "localhost:")


class TestComposeSchema:
    def test_compose_file_is_valid_against_the_compose_specification(
        self, compose: dict[str, Any]
    ) -> None:
        """docker-compose.yml satisfies the Compose Specification's JSON schema."""
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

    def test_the_configuration_reference_lists_every_variable(self) -> None:
        """Every variable of .env.example has its row in ops/CONFIGURATION.md."""
        reference = (ROOT / "ops/CONFIGURATION.md").read_text()
        missing = {name for name in env_example() if f"`{name}`" not in reference}
        assert not missing, f"ops/CONFIGURATION.md lacks: {', '.join(sorted(missing))}"

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
                    assert not SETTING_NAME.fullmatch(variable) or variable in SDK_VARIABLES, (
                        f"{name}: {variable} is no setting of AgentLink (a typo?)"
                    )
                    continue
                match = INTERPOLATION.fullmatch(value)
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
