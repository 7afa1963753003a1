"""Reading the deployment files as Compose, Redis and Docker would: docker-compose.yml
(environment, interpolation, memory, volumes), .env.example, redis.conf, .dockerignore,
and the settings table they must agree with."""

from __future__ import annotations

import contextlib
import fnmatch
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from agentlink.env import variables
from agentlink.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
"""The Compose Specification's schema, kept with the tests (compose-spec.NOTICE)."""
COMPOSE_FILE = ROOT / "docker-compose.yml"
REDIS_CONF = ROOT / "ops/redis/redis.conf"
PROMETHEUS_CONF = ROOT / "ops/prometheus/prometheus.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
# The modules that declare settings: every variable they name must be in the table.
SETTINGS_MODULES = (
    ROOT / "agentlink/settings.py",
    ROOT / "agentlink/report_settings.py",
    ROOT / "agentlink/dashboard/settings.py",
)

MIB = 1024**2
GIB = 1024**3
HOST_RAM_BYTES = 4 * GIB  # Hetzner CX22
HOST_RESERVE_BYTES = 512 * MIB  # kernel, dockerd, page cache: not for containers
APP_SERVICES = ("api", "worker")
SHUTDOWN_MARGIN_S = 5.0  # time a worker needs after its grace period to hand its job back

SETTING_NAME = re.compile(r"(?<![A-Z_])(?:AGENTLINK_[A-Z_]+|DROPBOX_[A-Z_]+|REDIS_URL)(?![A-Z_])")
# Read by the Dropbox SDK itself, not by Settings (a test server's host).
SDK_VARIABLES = frozenset({"DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST"})
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)
_MEMORY = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[bkmgt]?)b?$", re.IGNORECASE)
_DURATION_PART = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|us|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}


# -- loading ------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as Compose sees it before interpolation (anchors and merges resolved)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


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
        for name in SETTING_NAME.findall(module.read_text())
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

    return INTERPOLATION.sub(one, value)


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
