"""Every environment variable AgentLink reads, read once and typed.

The API, the consumers and the CLI all start from ``Settings.from_env()``; nothing else in
the code base looks at ``os.environ``. A bad value stops the process at start with a
message that names the variable, instead of failing on the first job.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from agentlink.errors import ConfigurationError

StorageKind = Literal["local", "dropbox"]
LogFormat = Literal["auto", "json", "console"]
T = TypeVar("T", bound=str)

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: T, choices: tuple[T, ...]) -> T:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    for choice in choices:
        if raw == choice:
            return choice
    raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """AgentLink's configuration; see the README for what each variable does."""

    redis_url: str = DEFAULT_REDIS_URL
    key_prefix: str = "agentlink"
    api_keys: tuple[str, ...] = ()
    storage: StorageKind = "local"
    output_dir: Path = Path("reports")
    dropbox_folder: str = "/AgentLink"
    sales_csv: Path | None = None
    lease_s: float = 15.0
    max_deliveries: int = 5
    max_attempts: int = 5
    retry_base_s: float = 2.0
    retry_max_s: float = 60.0
    render_timeout_s: float = 600.0
    render_max_jobs: int = 100
    render_max_rss_mb: int = 400
    shutdown_grace_s: float = 30.0
    block_ms: int = 2000
    job_ttl_s: int = 7 * 24 * 3600
    retention_s: int = 24 * 3600
    metrics_port: int | None = None
    consumer_name: str = field(default_factory=socket.gethostname)
    log_format: LogFormat = "auto"
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        metrics_port = _int(env, "AGENTLINK_METRICS_PORT", 0, minimum=0)
        sales_csv = env.get("AGENTLINK_SALES_CSV", "").strip()
        name = env.get("AGENTLINK_CONSUMER_NAME", "").strip() or socket.gethostname()
        keys = tuple(k.strip() for k in env.get("AGENTLINK_API_KEYS", "").split(",") if k.strip())
        prefix = env.get("AGENTLINK_KEY_PREFIX", "").strip() or "agentlink"
        if any(c.isspace() for c in prefix + name):
            raise ConfigurationError(
                "AGENTLINK_KEY_PREFIX and AGENTLINK_CONSUMER_NAME take no spaces"
            )
        settings = cls(
            redis_url=env.get("AGENTLINK_REDIS_URL") or env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            key_prefix=prefix,
            api_keys=keys,
            storage=_choice(env, "AGENTLINK_STORAGE", "local", ("local", "dropbox")),
            output_dir=Path(env.get("AGENTLINK_OUTPUT_DIR", "").strip() or "reports"),
            dropbox_folder=env.get("AGENTLINK_DROPBOX_FOLDER", "").strip() or "/AgentLink",
            sales_csv=Path(sales_csv) if sales_csv else None,
            lease_s=_float(env, "AGENTLINK_LEASE_S", 15.0, minimum=1.0),
            max_deliveries=_int(env, "AGENTLINK_MAX_DELIVERIES", 5, minimum=1),
            max_attempts=_int(env, "AGENTLINK_MAX_ATTEMPTS", 5, minimum=1),
            retry_base_s=_float(env, "AGENTLINK_RETRY_BASE_S", 2.0),
            retry_max_s=_float(env, "AGENTLINK_RETRY_MAX_S", 60.0),
            render_timeout_s=_float(env, "AGENTLINK_RENDER_TIMEOUT_S", 600.0, minimum=1.0),
            render_max_jobs=_int(env, "AGENTLINK_RENDER_MAX_JOBS", 100, minimum=1),
            render_max_rss_mb=_int(env, "AGENTLINK_RENDER_MAX_RSS_MB", 400, minimum=64),
            shutdown_grace_s=_float(env, "AGENTLINK_SHUTDOWN_GRACE_S", 30.0),
            block_ms=_int(env, "AGENTLINK_BLOCK_MS", 2000, minimum=10),
            job_ttl_s=_int(env, "AGENTLINK_JOB_TTL_S", 7 * 24 * 3600, minimum=60),
            retention_s=_int(env, "AGENTLINK_RETENTION_S", 24 * 3600),
            metrics_port=metrics_port or None,
            consumer_name=name,
            log_format=_choice(env, "AGENTLINK_LOG_FORMAT", "auto", ("auto", "json", "console")),
            log_level=_choice(
                env, "AGENTLINK_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
            ),
        )
        if settings.retry_max_s < settings.retry_base_s:
            raise ConfigurationError(
                "AGENTLINK_RETRY_MAX_S must not be below AGENTLINK_RETRY_BASE_S"
            )
        return settings

    @property
    def lease_ms(self) -> int:
        """The lease in milliseconds, the unit XAUTOCLAIM and XPENDING speak."""
        return int(self.lease_s * 1000)

    @property
    def renew_every_s(self) -> float:
        """How often a consumer renews its lease: a third of it, so two renewals may fail."""
        return self.lease_s / 3
