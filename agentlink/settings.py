"""Every environment variable AgentLink reads, read once and typed.

The API, the consumers and the CLI all start from ``Settings.from_env()``; nothing else in
the code base looks at ``os.environ``. A bad value stops the process at start with a
message that names the variable, instead of failing on the first job.
"""

from __future__ import annotations

import os
import re
import socket
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

from agentlink.errors import ConfigurationError
from agentlink.observe.redaction import url_password
from agentlink.report_settings import BrandSettings, DataSettings, brand_from_env, data_from_env

StorageKind = Literal["local", "dropbox"]
LogFormat = Literal["auto", "json", "console"]
T = TypeVar("T", bound=str)

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

MIB = 1024 * 1024
DROPBOX_UPLOAD_LIMIT_BYTES = 150 * MIB
"""The largest file Dropbox accepts in one ``files/upload`` call; above it, sessions."""
DROPBOX_TEMPLATE_FIELDS = frozenset(
    {"path", "state", "suburb", "kind", "date", "year", "month", "job8", "filename"}
)
"""Placeholders of ``AGENTLINK_DROPBOX_PATH_TEMPLATE`` (see ops/CONFIGURATION.md)."""
_DROPBOX_UNIQUE_FIELDS = frozenset({"path", "filename", "job8"})


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


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _bool(env: Mapping[str, str], name: str, *, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


_HOST_PATTERN = re.compile(r"^(https?://)?[a-z0-9*?\[\]!._:-]+$")


def _callback_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """``AGENTLINK_CALLBACK_HOSTS``: host patterns, an ``http://`` prefix allows plain HTTP."""
    raw = env.get("AGENTLINK_CALLBACK_HOSTS", "")
    patterns = tuple(p.strip().lower() for p in raw.split(",") if p.strip()) or ("*.make.com",)
    for pattern in patterns:
        if not _HOST_PATTERN.match(pattern) or pattern.rstrip("/").endswith("://"):
            raise ConfigurationError(
                f"AGENTLINK_CALLBACK_HOSTS: {pattern!r} is not a host pattern like *.make.com, "
                "hooks.example.com or http://receiver.internal"
            )
    return patterns


def _dropbox_folder(raw: str) -> str:
    """``"AgentLink/"`` -> ``"/AgentLink"``; the root folder is ``""``."""
    folder = raw.strip() or "/AgentLink"
    return "/" + folder.strip("/") if folder.strip("/") else ""


@dataclass(frozen=True, slots=True)
class Settings:
    """AgentLink's configuration; ops/CONFIGURATION.md says what each variable does."""

    redis_url: str = DEFAULT_REDIS_URL
    key_prefix: str = "agentlink"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    operator_keys: tuple[str, ...] = field(default=(), repr=False)
    storage: StorageKind = "local"
    output_dir: Path = Path("reports")
    dropbox_folder: str = "/AgentLink"
    dropbox_app_key: str = ""
    # Secrets stay out of repr(), so logging the settings never prints them.
    dropbox_app_secret: str = field(default="", repr=False)
    dropbox_refresh_token: str = field(default="", repr=False)
    dropbox_access_token: str = field(default="", repr=False)
    dropbox_path_template: str = "{path}"
    dropbox_session_threshold_bytes: int = 100 * MIB
    dropbox_timeout_s: float = 60.0
    dropbox_max_retries: int = 2
    dropbox_max_rate_limit_retries: int = 1
    # Where sales come from and whose brand the reports carry (agentlink/report_settings.py).
    data: DataSettings = field(default_factory=DataSettings)
    brand: BrandSettings = field(default_factory=BrandSettings)
    lease_s: float = 15.0
    max_deliveries: int = 5
    max_attempts: int = 5
    retry_base_s: float = 2.0
    retry_max_s: float = 60.0
    render_timeout_s: float = 600.0
    render_max_jobs: int = 100
    render_max_rss_mb: int = 400
    shutdown_grace_s: float = 30.0
    storage_recheck_s: float = 30.0
    block_ms: int = 2000
    job_ttl_s: int = 7 * 24 * 3600
    retention_s: int = 24 * 3600
    metrics_port: int | None = None
    # The scaling gauges of /metrics (ops/README.md: "Metrics and scaling").
    scaling_window_s: int = 900
    target_utilisation: float = 0.7
    memory_reserve_mb: int = 256
    consumer_name: str = field(default_factory=socket.gethostname)
    log_format: LogFormat = "auto"
    log_level: str = "info"
    # The API's guard rails (agentlink/api/README.md).
    allow_no_auth: bool = False
    api_workers: int = 1
    redis_pool_size: int = 32
    redis_pool_wait_s: float = 10.0
    api_cache_s: float = 2.0
    header_timeout_s: float = 10.0
    auth_failure_limit: int = 30
    idempotency_ttl_s: int = 24 * 3600
    rate_limit: int = 120
    rate_limit_window_s: float = 60.0
    max_wait_s: float = 3600.0
    redis_memory_high_water: float = 0.9
    max_body_bytes: int = 64 * 1024
    body_timeout_s: float = 10.0
    # Callbacks: where results may be POSTed, how they are signed and retried.
    webhook_secret: str = field(default="", repr=False)
    callback_hosts: tuple[str, ...] = ("*.make.com",)
    callback_allow_insecure: bool = False
    callback_timeout_s: float = 10.0
    callback_max_attempts: int = 10
    callback_retry_base_s: float = 5.0
    callback_retry_max_s: float = 900.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        metrics_port = _int(env, "AGENTLINK_METRICS_PORT", 0, minimum=0)
        name = env.get("AGENTLINK_CONSUMER_NAME", "").strip() or socket.gethostname()
        keys = _list(env, "AGENTLINK_API_KEYS")
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
            dropbox_folder=_dropbox_folder(env.get("AGENTLINK_DROPBOX_FOLDER", "")),
            dropbox_app_key=env.get("DROPBOX_APP_KEY", "").strip(),
            dropbox_app_secret=env.get("DROPBOX_APP_SECRET", "").strip(),
            dropbox_refresh_token=env.get("DROPBOX_REFRESH_TOKEN", "").strip(),
            dropbox_access_token=env.get("DROPBOX_ACCESS_TOKEN", "").strip(),
            dropbox_path_template=env.get("AGENTLINK_DROPBOX_PATH_TEMPLATE", "").strip()
            or "{path}",
            dropbox_session_threshold_bytes=_int(
                env, "AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES", 100 * MIB, minimum=1
            ),
            dropbox_timeout_s=_float(env, "AGENTLINK_DROPBOX_TIMEOUT_S", 60.0, minimum=1.0),
            dropbox_max_retries=_int(env, "AGENTLINK_DROPBOX_MAX_RETRIES", 2),
            dropbox_max_rate_limit_retries=_int(env, "AGENTLINK_DROPBOX_MAX_RATE_LIMIT_RETRIES", 1),
            data=data_from_env(env),
            brand=brand_from_env(env),
            lease_s=_float(env, "AGENTLINK_LEASE_S", 15.0, minimum=1.0),
            max_deliveries=_int(env, "AGENTLINK_MAX_DELIVERIES", 5, minimum=1),
            max_attempts=_int(env, "AGENTLINK_MAX_ATTEMPTS", 5, minimum=1),
            retry_base_s=_float(env, "AGENTLINK_RETRY_BASE_S", 2.0),
            retry_max_s=_float(env, "AGENTLINK_RETRY_MAX_S", 60.0),
            render_timeout_s=_float(env, "AGENTLINK_RENDER_TIMEOUT_S", 600.0, minimum=1.0),
            render_max_jobs=_int(env, "AGENTLINK_RENDER_MAX_JOBS", 100, minimum=1),
            render_max_rss_mb=_int(env, "AGENTLINK_RENDER_MAX_RSS_MB", 400, minimum=64),
            shutdown_grace_s=_float(env, "AGENTLINK_SHUTDOWN_GRACE_S", 30.0),
            storage_recheck_s=_float(env, "AGENTLINK_STORAGE_RECHECK_S", 30.0, minimum=0.1),
            block_ms=_int(env, "AGENTLINK_BLOCK_MS", 2000, minimum=10),
            job_ttl_s=_int(env, "AGENTLINK_JOB_TTL_S", 7 * 24 * 3600, minimum=60),
            retention_s=_int(env, "AGENTLINK_RETENTION_S", 24 * 3600),
            metrics_port=metrics_port or None,
            scaling_window_s=_int(env, "AGENTLINK_SCALING_WINDOW_S", 900, minimum=60),
            target_utilisation=_float(env, "AGENTLINK_TARGET_UTILISATION", 0.7, minimum=0.05),
            memory_reserve_mb=_int(env, "AGENTLINK_MEMORY_RESERVE_MB", 256),
            consumer_name=name,
            log_format=_choice(env, "AGENTLINK_LOG_FORMAT", "auto", ("auto", "json", "console")),
            log_level=_choice(
                env, "AGENTLINK_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
            ),
        )
        settings = replace(
            settings,
            allow_no_auth=_bool(env, "AGENTLINK_ALLOW_NO_AUTH"),
            operator_keys=_list(env, "AGENTLINK_OPERATOR_KEYS"),
            api_workers=_int(env, "AGENTLINK_API_WORKERS", 1, minimum=1),
            redis_pool_size=_int(env, "AGENTLINK_REDIS_POOL_SIZE", 32, minimum=1),
            redis_pool_wait_s=_float(env, "AGENTLINK_REDIS_POOL_WAIT_S", 10.0, minimum=0.01),
            api_cache_s=_float(env, "AGENTLINK_API_CACHE_S", 2.0),
            header_timeout_s=_float(env, "AGENTLINK_HEADER_TIMEOUT_S", 10.0, minimum=0.5),
            auth_failure_limit=_int(env, "AGENTLINK_AUTH_FAILURE_LIMIT", 30),
            idempotency_ttl_s=_int(env, "AGENTLINK_IDEMPOTENCY_TTL_S", 24 * 3600, minimum=60),
            rate_limit=_int(env, "AGENTLINK_RATE_LIMIT", 120),
            rate_limit_window_s=_float(env, "AGENTLINK_RATE_LIMIT_WINDOW_S", 60.0, minimum=1.0),
            max_wait_s=_float(env, "AGENTLINK_MAX_WAIT_S", 3600.0),
            redis_memory_high_water=_float(env, "AGENTLINK_REDIS_MEMORY_HIGH_WATER", 0.9),
            max_body_bytes=_int(env, "AGENTLINK_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
            body_timeout_s=_float(env, "AGENTLINK_BODY_TIMEOUT_S", 10.0, minimum=0.1),
            webhook_secret=env.get("AGENTLINK_WEBHOOK_SECRET", "").strip(),
            callback_hosts=_callback_hosts(env),
            callback_allow_insecure=_bool(env, "AGENTLINK_CALLBACK_ALLOW_INSECURE"),
            callback_timeout_s=_float(env, "AGENTLINK_CALLBACK_TIMEOUT_S", 10.0, minimum=0.5),
            callback_max_attempts=_int(env, "AGENTLINK_CALLBACK_MAX_ATTEMPTS", 10, minimum=1),
            callback_retry_base_s=_float(env, "AGENTLINK_CALLBACK_RETRY_BASE_S", 5.0),
            callback_retry_max_s=_float(env, "AGENTLINK_CALLBACK_RETRY_MAX_S", 900.0),
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
            settings.require_dropbox(env)
        return settings

    def require_dropbox(self, env: Mapping[str, str] | None = None) -> None:
        """``ConfigurationError`` naming the variable if the Dropbox settings cannot work.

        ``from_env`` calls it when ``AGENTLINK_STORAGE=dropbox``; ``agentlink dropbox check``
        calls it whatever the storage, so credentials can be tried before switching.
        """
        env = os.environ if env is None else env
        if self.dropbox_refresh_token and self.dropbox_access_token:
            raise ConfigurationError(
                "set DROPBOX_REFRESH_TOKEN or DROPBOX_ACCESS_TOKEN, not both "
                "(a refresh token is what a long-running server wants)"
            )
        if self.dropbox_refresh_token and not self.dropbox_app_key:
            raise ConfigurationError(
                "DROPBOX_REFRESH_TOKEN needs DROPBOX_APP_KEY (and DROPBOX_APP_SECRET, unless "
                "the token was obtained with PKCE): the app key refreshes access tokens"
            )
        if self.dropbox_app_secret and not self.dropbox_app_key:
            raise ConfigurationError("DROPBOX_APP_SECRET is set but DROPBOX_APP_KEY is not")
        if not (self.dropbox_refresh_token or self.dropbox_access_token):
            raise ConfigurationError(
                "AGENTLINK_STORAGE=dropbox needs DROPBOX_REFRESH_TOKEN (with DROPBOX_APP_KEY "
                "and DROPBOX_APP_SECRET) or DROPBOX_ACCESS_TOKEN; see ops/README.md, Dropbox"
            )
        folder = self.dropbox_folder
        if "//" in folder or any(part in {".", ".."} for part in folder.split("/")):
            raise ConfigurationError(
                f"AGENTLINK_DROPBOX_FOLDER={folder!r} is not a Dropbox folder path "
                "(like /AgentLink or /Reports/AgentLink)"
            )
        _check_template(self.dropbox_path_template)
        if self.dropbox_session_threshold_bytes > DROPBOX_UPLOAD_LIMIT_BYTES:
            raise ConfigurationError(
                "AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES must be at most "
                f"{DROPBOX_UPLOAD_LIMIT_BYTES} (150 MiB, Dropbox's single-upload limit)"
            )
        for name, value in (
            ("AGENTLINK_DROPBOX_MAX_RETRIES", self.dropbox_max_retries),
            ("AGENTLINK_DROPBOX_MAX_RATE_LIMIT_RETRIES", self.dropbox_max_rate_limit_retries),
        ):
            if value > 10:
                raise ConfigurationError(
                    f"{name} must be at most 10 (the SDK retries inside one attempt; the "
                    f"consumer's own back-off handles the rest), got {value}"
                )
        for name in ("DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST"):
            if name in env and not env[name].strip():
                raise ConfigurationError(f"{name} is set but empty; unset it to use Dropbox itself")

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

    @property
    def renew_every_s(self) -> float:
        """How often a consumer renews its lease: a third of it, so two renewals may fail."""
        return self.lease_s / 3


def _check_template(template: str) -> None:
    """``AGENTLINK_DROPBOX_PATH_TEMPLATE`` names known fields and one unique to the job."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigurationError(
            f"AGENTLINK_DROPBOX_PATH_TEMPLATE={template!r} is not a valid template: {exc}"
        ) from None
    unknown = ", ".join("{" + name + "}" for name in sorted(fields - DROPBOX_TEMPLATE_FIELDS))
    if unknown:
        known = ", ".join("{" + name + "}" for name in sorted(DROPBOX_TEMPLATE_FIELDS))
        raise ConfigurationError(
            f"AGENTLINK_DROPBOX_PATH_TEMPLATE={template!r} uses unknown fields {unknown}; "
            f"known: {known}"
        )
    try:
        template.format(**dict.fromkeys(DROPBOX_TEMPLATE_FIELDS, "x"))
    except (ValueError, IndexError) as exc:
        raise ConfigurationError(
            f"AGENTLINK_DROPBOX_PATH_TEMPLATE={template!r} is not a valid template: {exc}"
        ) from None
    if not fields & _DROPBOX_UNIQUE_FIELDS:
        # Without a per-job part, two reports would overwrite each other.
        raise ConfigurationError(
            f"AGENTLINK_DROPBOX_PATH_TEMPLATE={template!r} must contain {{job8}}, "
            "{filename} or {path}, so that every job gets its own file"
        )
