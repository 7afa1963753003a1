"""Every environment variable AgentLink reads, read once and typed.

The API, the consumers and the CLI all start from ``Settings.from_env()``; nothing else in
the code base looks at ``os.environ``. Each variable is declared once, as a field of
``Settings`` (or of the report settings inside it) naming the variable, its parser, its
default and what it is for (``agentlink.env``). A bad value stops the process at start with
a message that names the variable, instead of failing on the first job.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentlink.dashboard.settings import DashboardSettings, dashboard_from_env
from agentlink.env import (
    choice,
    computed,
    flag,
    group,
    integer,
    integer_parser,
    items,
    number,
    read,
    setting,
    text,
    verbatim,
)
from agentlink.errors import ConfigurationError
from agentlink.observe.redaction import url_password
from agentlink.report_settings import (
    BRAND_FILE,
    SALES_CSV,
    BrandSettings,
    DataSettings,
    brand_from_env,
    data_from_env,
)

StorageKind = Literal["local", "dropbox"]
LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]

MIB = 1024 * 1024
_HOST_PATTERN = re.compile(r"^(https?://)?[a-z0-9*?\[\]!._:-]+$")


def _callback_hosts(name: str, given: tuple[str, ...]) -> tuple[str, ...]:
    """Host patterns, lower case; an ``http://`` prefix allows plain HTTP to that host."""
    patterns = tuple(pattern.lower() for pattern in given)
    for pattern in patterns:
        if not _HOST_PATTERN.match(pattern) or pattern.rstrip("/").endswith("://"):
            raise ConfigurationError(
                f"{name}: {pattern!r} is not a host pattern like *.make.com, "
                "hooks.example.com or http://receiver.internal"
            )
    return patterns


def _dropbox_folder(_name: str, raw: str) -> str:
    """``"AgentLink/"`` -> ``"/AgentLink"``; the root folder is ``""``."""
    return "/" + raw.strip("/") if raw.strip("/") else ""


def _port(name: str, raw: str) -> int | None:
    """A port number; 0 is none."""
    return integer_parser(0)(name, raw) or None


@dataclass(frozen=True, slots=True)
class Settings:
    """AgentLink's configuration: one field per environment variable, declared once.

    Each field names its variable, its parser, its default and what it is for
    (``agentlink.env``); ``from_env`` reads them all, then checks how they fit together.
    Secrets stay out of ``repr()``, so logging the settings never prints them.
    """

    # -- Redis
    redis_url: str = text(
        "AGENTLINK_REDIS_URL",
        "redis://localhost:6379/0",
        "where the API and the workers find Redis (REDIS_URL when this is unset)",
        aliases=("REDIS_URL",),
    )
    key_prefix: str = text(
        "AGENTLINK_KEY_PREFIX", "agentlink", "prefix of every Redis key; no spaces"
    )
    # -- storage
    storage: StorageKind = choice(
        "AGENTLINK_STORAGE", "local", ("local", "dropbox"), "where PDFs go: a folder or Dropbox"
    )
    output_dir: Path = setting(
        "AGENTLINK_OUTPUT_DIR", Path("reports"), lambda _, raw: Path(raw), "local storage's folder"
    )
    dropbox_folder: str = text(
        "AGENTLINK_DROPBOX_FOLDER",
        "/AgentLink",
        "the Dropbox folder the reports go into; / is the root",
        parse=_dropbox_folder,
    )
    dropbox_app_key: str = text("DROPBOX_APP_KEY", "", "the Dropbox app's key")
    dropbox_app_secret: str = text(
        "DROPBOX_APP_SECRET", "", "the Dropbox app's secret (none with PKCE)", secret=True
    )
    dropbox_refresh_token: str = text(
        "DROPBOX_REFRESH_TOKEN", "", "a Dropbox refresh token with offline access", secret=True
    )
    dropbox_access_token: str = text(
        "DROPBOX_ACCESS_TOKEN", "", "a plain access token instead of a refresh token", secret=True
    )
    dropbox_path_template: str = text(
        "AGENTLINK_DROPBOX_PATH_TEMPLATE",
        "{path}",
        "where a report goes below the folder (storage/dropbox_settings.py)",
    )
    dropbox_session_threshold_bytes: int = integer(
        "AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES",
        100 * MIB,
        "reports larger than this are uploaded in chunks (at most 150 MiB)",
        minimum=1,
    )
    dropbox_timeout_s: float = number(
        "AGENTLINK_DROPBOX_TIMEOUT_S", 60.0, "how long the SDK waits for an answer", minimum=1.0
    )
    dropbox_max_retries: int = integer(
        "AGENTLINK_DROPBOX_MAX_RETRIES", 2, "how often the SDK retries a 5xx itself (at most 10)"
    )
    dropbox_max_rate_limit_retries: int = integer(
        "AGENTLINK_DROPBOX_MAX_RATE_LIMIT_RETRIES",
        1,
        "how often the SDK retries a 429 itself (at most 10)",
    )
    # -- where sales come from and whose brand the reports carry (agentlink/report_settings.py)
    data: DataSettings = group(DataSettings, data_from_env, SALES_CSV)
    brand: BrandSettings = group(BrandSettings, brand_from_env, BRAND_FILE)
    # -- delivery and retries
    lease_s: float = number(
        "AGENTLINK_LEASE_S",
        10.0,
        "how long a consumer's claim on a job lasts without renewal",
        minimum=1.0,
    )
    max_deliveries: int = integer(
        "AGENTLINK_MAX_DELIVERIES",
        5,
        "deliveries (crashes, lost leases) before a job goes to the dead letters",
        minimum=1,
    )
    max_attempts: int = integer(
        "AGENTLINK_MAX_ATTEMPTS",
        5,
        "attempts (transient errors are retried) before a job goes to the dead letters",
        minimum=1,
    )
    retry_base_s: float = number("AGENTLINK_RETRY_BASE_S", 2.0, "a job's first retry delay")
    retry_max_s: float = number("AGENTLINK_RETRY_MAX_S", 60.0, "a job's longest retry delay")
    render_timeout_s: float = number(
        "AGENTLINK_RENDER_TIMEOUT_S",
        600.0,
        "how long a render may take before it is killed and retried",
        minimum=1.0,
    )
    render_max_jobs: int = integer(
        "AGENTLINK_RENDER_MAX_JOBS",
        100,
        "reports a render process makes before its successor",
        minimum=1,
    )
    render_max_rss_mb: int = integer(
        "AGENTLINK_RENDER_MAX_RSS_MB",
        400,
        "resident memory (MiB) past which a render process is replaced",
        minimum=64,
    )
    shutdown_grace_s: float = number(
        "AGENTLINK_SHUTDOWN_GRACE_S",
        30.0,
        "how long a worker keeps at its job after SIGTERM before handing it back",
    )
    storage_recheck_s: float = number(
        "AGENTLINK_STORAGE_RECHECK_S",
        30.0,
        "how often a worker paused by the storage's refusal tries it again",
        minimum=0.1,
    )
    block_ms: int = integer(
        "AGENTLINK_BLOCK_MS", 2000, "how long XREADGROUP waits for new work", minimum=10
    )
    # -- retention
    job_ttl_s: int = integer(
        "AGENTLINK_JOB_TTL_S", 7 * 24 * 3600, "how long a job's record is kept", minimum=60
    )
    retention_s: int = integer(
        "AGENTLINK_RETENTION_S", 24 * 3600, "how long processed stream entries are kept"
    )
    # -- workers
    metrics_port: int | None = setting(
        "AGENTLINK_METRICS_PORT", None, _port, "port of a worker's Prometheus metrics; 0: none"
    )
    consumer_name: str = computed(
        "AGENTLINK_CONSUMER_NAME",
        socket.gethostname,
        verbatim,
        "prefix of a worker's consumer names (default: the host name); no spaces",
    )
    # -- metrics and scaling (the gauges of /metrics)
    scaling_window_s: int = integer(
        "AGENTLINK_SCALING_WINDOW_S",
        900,
        "history behind the arrival and service rates",
        minimum=60,
    )
    target_utilisation: float = number(
        "AGENTLINK_TARGET_UTILISATION",
        0.7,
        "the busy fraction of a worker to plan for (at most 1)",
        minimum=0.05,
    )
    memory_reserve_mb: int = integer(
        "AGENTLINK_MEMORY_RESERVE_MB",
        256,
        "host memory (MiB) kept free when counting how many workers fit",
    )
    # -- logging
    log_format: LogFormat = choice(
        "AGENTLINK_LOG_FORMAT", "auto", ("auto", "json", "console"), "how log lines look"
    )
    log_level: LogLevel = choice(
        "AGENTLINK_LOG_LEVEL", "info", ("debug", "info", "warning", "error"), "the least to log"
    )
    # -- the API's guard rails
    api_keys: tuple[str, ...] = items(
        "AGENTLINK_API_KEYS", "keys a request may present (none: no authentication)", secret=True
    )
    operator_keys: tuple[str, ...] = items(
        "AGENTLINK_OPERATOR_KEYS", "API keys that also read every tenant's jobs", secret=True
    )
    allow_no_auth: bool = flag(
        "AGENTLINK_ALLOW_NO_AUTH", "serve an address other than loopback without API keys"
    )
    api_workers: int = integer(
        "AGENTLINK_API_WORKERS", 1, "API processes sharing the port", minimum=1
    )
    redis_pool_size: int = integer(
        "AGENTLINK_REDIS_POOL_SIZE", 32, "Redis connections per API process", minimum=1
    )
    redis_pool_wait_s: float = number(
        "AGENTLINK_REDIS_POOL_WAIT_S",
        10.0,
        "how long a request waits for a free Redis connection before a 503",
        minimum=0.01,
    )
    api_cache_s: float = number(
        "AGENTLINK_API_CACHE_S",
        2.0,
        "how long an API process trusts its reading of the slow-changing state",
    )
    header_timeout_s: float = number(
        "AGENTLINK_HEADER_TIMEOUT_S",
        10.0,
        "how long a client may take to send its request headers",
        minimum=0.5,
    )
    auth_failure_limit: int = integer(
        "AGENTLINK_AUTH_FAILURE_LIMIT",
        30,
        "failed authentications per address per minute before a 429; 0: no limit",
    )
    idempotency_ttl_s: int = integer(
        "AGENTLINK_IDEMPOTENCY_TTL_S",
        24 * 3600,
        "how long an idempotency key keeps naming its job",
        minimum=60,
    )
    rate_limit: int = integer(
        "AGENTLINK_RATE_LIMIT", 120, "requests per API key per window; 0: no limit"
    )
    rate_limit_window_s: float = number(
        "AGENTLINK_RATE_LIMIT_WINDOW_S", 60.0, "the window of AGENTLINK_RATE_LIMIT", minimum=1.0
    )
    max_wait_s: float = number(
        "AGENTLINK_MAX_WAIT_S",
        3600.0,
        "new jobs are refused while one would wait longer than this; 0: never",
    )
    redis_memory_high_water: float = number(
        "AGENTLINK_REDIS_MEMORY_HIGH_WATER",
        0.9,
        "new jobs are refused while Redis uses more of its maxmemory than this fraction",
    )
    max_body_bytes: int = integer(
        "AGENTLINK_MAX_BODY_BYTES", 64 * 1024, "the largest request body", minimum=1024
    )
    body_timeout_s: float = number(
        "AGENTLINK_BODY_TIMEOUT_S", 10.0, "how long a client may take to send its body", minimum=0.1
    )
    # -- callbacks: where results may be POSTed, how they are signed and retried
    webhook_secret: str = text(
        "AGENTLINK_WEBHOOK_SECRET", "", "the key that signs callbacks (none: unsigned)", secret=True
    )
    callback_hosts: tuple[str, ...] = items(
        "AGENTLINK_CALLBACK_HOSTS",
        "host patterns a callback_url may name; http://<pattern> allows plain http",
        default=("*.make.com",),
        parse=_callback_hosts,
    )
    callback_allow_insecure: bool = flag(
        "AGENTLINK_CALLBACK_ALLOW_INSECURE", "lift the https-only and public-address rules"
    )
    callback_timeout_s: float = number(
        "AGENTLINK_CALLBACK_TIMEOUT_S", 10.0, "how long one callback delivery may take", minimum=0.5
    )
    callback_max_attempts: int = integer(
        "AGENTLINK_CALLBACK_MAX_ATTEMPTS", 10, "attempts before a callback is given up", minimum=1
    )
    callback_retry_base_s: float = number(
        "AGENTLINK_CALLBACK_RETRY_BASE_S", 5.0, "a callback's first retry delay"
    )
    callback_retry_max_s: float = number(
        "AGENTLINK_CALLBACK_RETRY_MAX_S", 900.0, "a callback's longest retry delay"
    )
    # -- the operator dashboard (agentlink/dashboard/settings.py)
    dashboard: DashboardSettings = group(DashboardSettings, dashboard_from_env)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        settings = read(cls, env)
        if any(c.isspace() for c in settings.key_prefix + settings.consumer_name):
            raise ConfigurationError(
                "AGENTLINK_KEY_PREFIX and AGENTLINK_CONSUMER_NAME take no spaces"
            )
        if not 0 < settings.redis_memory_high_water <= 1:
            raise ConfigurationError(
                "AGENTLINK_REDIS_MEMORY_HIGH_WATER must be a fraction of maxmemory in (0, 1], "
                f"got {settings.redis_memory_high_water}"
            )
        if settings.callback_retry_max_s < settings.callback_retry_base_s:
            raise ConfigurationError(
                "AGENTLINK_CALLBACK_RETRY_MAX_S must not be below AGENTLINK_CALLBACK_RETRY_BASE_S"
            )
        if settings.retry_max_s < settings.retry_base_s:
            raise ConfigurationError(
                "AGENTLINK_RETRY_MAX_S must not be below AGENTLINK_RETRY_BASE_S"
            )
        if settings.target_utilisation > 1:
            raise ConfigurationError(
                "AGENTLINK_TARGET_UTILISATION is the busy fraction to plan for, at most 1, "
                f"got {settings.target_utilisation}"
            )
        if settings.storage == "dropbox":
            from agentlink.storage.dropbox_settings import require_dropbox

            require_dropbox(settings, env)
        return settings

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value in these settings, for the log scrubber (observe.redaction)."""
        values = (
            *self.api_keys,
            *self.operator_keys,
            url_password(self.redis_url),
            self.dropbox_app_secret,
            self.dropbox_refresh_token,
            self.dropbox_access_token,
            self.webhook_secret,
            self.dashboard.password,
            self.dashboard.session_secret,
        )
        return tuple(v for v in values if v)

    @property
    def dropbox_auth(self) -> str:
        """How AgentLink signs in to Dropbox, for messages: which variable holds the token."""
        return "DROPBOX_REFRESH_TOKEN" if self.dropbox_refresh_token else "DROPBOX_ACCESS_TOKEN"

    @property
    def auth_required(self) -> bool:
        """True when requests need an API key (``AGENTLINK_API_KEYS`` or operator keys set)."""
        return bool(self.api_keys or self.operator_keys)

    @property
    def sales_csv(self) -> Path | None:
        """The sales CSV, when ``AGENTLINK_DATA`` (or ``AGENTLINK_SALES_CSV``) names one."""
        return Path(self.data.location) if self.data.kind == "csv" else None

    @property
    def lease_ms(self) -> int:
        """The lease in milliseconds, the unit XAUTOCLAIM and XPENDING speak."""
        return int(self.lease_s * 1000)
