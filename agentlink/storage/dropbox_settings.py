"""The rules the Dropbox settings must follow before a report is uploaded.

``Settings.from_env`` applies them when ``AGENTLINK_STORAGE=dropbox``, and ``agentlink
dropbox check`` whatever the storage, so that a bad combination (two tokens, a template
without a per-job part, a threshold above Dropbox's limit) stops the start with a message
naming the variable instead of failing the first upload.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agentlink.errors import ConfigurationError
from agentlink.settings import MIB

if TYPE_CHECKING:
    from agentlink.settings import Settings

DROPBOX_UPLOAD_LIMIT_BYTES = 150 * MIB
"""The largest file Dropbox accepts in one ``files/upload`` call; above it, sessions."""
DROPBOX_TEMPLATE_FIELDS = frozenset(
    {"path", "state", "suburb", "kind", "date", "year", "month", "job8", "filename"}
)
"""Placeholders of ``AGENTLINK_DROPBOX_PATH_TEMPLATE`` (``DropboxStorage.dropbox_path``)."""
_DROPBOX_UNIQUE_FIELDS = frozenset({"path", "filename", "job8"})


def require_dropbox(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """``ConfigurationError`` naming the variable if the Dropbox settings cannot work.

    ``Settings.from_env`` calls it when ``AGENTLINK_STORAGE=dropbox``; ``agentlink dropbox check``
    calls it whatever the storage, so credentials can be tried before switching.
    """
    env = os.environ if env is None else env
    if settings.dropbox_refresh_token and settings.dropbox_access_token:
        raise ConfigurationError(
            "set DROPBOX_REFRESH_TOKEN or DROPBOX_ACCESS_TOKEN, not both "
            "(a refresh token is what a long-running server wants)"
        )
    if settings.dropbox_refresh_token and not settings.dropbox_app_key:
        raise ConfigurationError(
            "DROPBOX_REFRESH_TOKEN needs DROPBOX_APP_KEY (and DROPBOX_APP_SECRET, unless "
            "the token was obtained with PKCE): the app key refreshes access tokens"
        )
    if settings.dropbox_app_secret and not settings.dropbox_app_key:
        raise ConfigurationError("DROPBOX_APP_SECRET is set but DROPBOX_APP_KEY is not")
    if not (settings.dropbox_refresh_token or settings.dropbox_access_token):
        raise ConfigurationError(
            "AGENTLINK_STORAGE=dropbox needs DROPBOX_REFRESH_TOKEN (with DROPBOX_APP_KEY "
            "and DROPBOX_APP_SECRET) or DROPBOX_ACCESS_TOKEN; see ops/README.md, Dropbox"
        )
    folder = settings.dropbox_folder
    if "//" in folder or any(part in {".", ".."} for part in folder.split("/")):
        raise ConfigurationError(
            f"AGENTLINK_DROPBOX_FOLDER={folder!r} is not a Dropbox folder path "
            "(like /AgentLink or /Reports/AgentLink)"
        )
    _check_template(settings.dropbox_path_template)
    if settings.dropbox_session_threshold_bytes > DROPBOX_UPLOAD_LIMIT_BYTES:
        raise ConfigurationError(
            "AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES must be at most "
            f"{DROPBOX_UPLOAD_LIMIT_BYTES} (150 MiB, Dropbox's single-upload limit)"
        )
    for name, value in (
        ("AGENTLINK_DROPBOX_MAX_RETRIES", settings.dropbox_max_retries),
        ("AGENTLINK_DROPBOX_MAX_RATE_LIMIT_RETRIES", settings.dropbox_max_rate_limit_retries),
    ):
        if value > 10:
            raise ConfigurationError(
                f"{name} must be at most 10 (the SDK retries inside one attempt; the "
                f"consumer's own back-off handles the rest), got {value}"
            )
    for name in ("DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST"):
        if name in env and not env[name].strip():
            raise ConfigurationError(f"{name} is set but empty; unset it to use Dropbox itself")


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
