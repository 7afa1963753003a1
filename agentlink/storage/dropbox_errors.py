"""Dropbox's errors as AgentLink's: what the consumer should do with the job.

``translate`` maps an SDK or network exception onto AgentLink's tree —

- ``StorageUnavailableError`` (retry): 429 and ``too_many_write_operations`` (with the
  server's ``retry_after``), 5xx, network errors, timeouts, answers the SDK cannot read;
- ``StorageRejectedError`` (fail the job): a full Dropbox, a path Dropbox refuses;
- ``StorageConfigError`` (not the job's fault: pause): invalid, revoked or expired
  credentials, a missing scope, no permission to write the folder.

Each message says what to change, naming the variable (``token_variable`` is the one that
holds the credentials in use).
"""

from __future__ import annotations

import json
import re
from typing import Any

from dropbox import exceptions as dbx
from stone.backends.python_rsrc.stone_validators import ValidationError as StoneValidationError

from agentlink.errors import (
    AgentLinkError,
    StorageConfigError,
    StorageRejectedError,
    StorageUnavailableError,
)

# Tags of Dropbox's error unions, wherever they sit in the union (``path/insufficient_space``).
_RETRY_TAGS = {"too_many_write_operations", "too_many_requests", "content_hash_mismatch"}
_CONFIG_TAGS = {
    "no_write_permission": "the app may not write there: check AGENTLINK_DROPBOX_FOLDER and "
    "the app's access type (an 'App folder' app can only write inside Apps/<app name>)",
    "team_folder": "it is a team folder AgentLink may not write into; change "
    "AGENTLINK_DROPBOX_FOLDER",
    "email_not_verified": "the Dropbox account's e-mail address is not verified, and Dropbox "
    "creates no shared links until it is",
    "access_denied": "the account's sharing policy forbids shared links to this file",
}
_REJECT_TAGS = {
    "insufficient_space": "the Dropbox account is full: free space in it (or upgrade the "
    "plan), then submit the report again",
    "malformed_path": "Dropbox calls the path malformed: check AGENTLINK_DROPBOX_FOLDER and "
    "AGENTLINK_DROPBOX_PATH_TEMPLATE",
    "disallowed_name": "Dropbox does not allow this file name: change "
    "AGENTLINK_DROPBOX_PATH_TEMPLATE",
    "conflict": "a folder (or a file where a folder should be) is in the way in Dropbox: move it",
    "too_many_files": "the Dropbox account holds too many files: delete some",
    "payload_too_large": "the file is too large for one upload: lower "
    "AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES",
    "settings_error": "Dropbox refused the shared-link settings",
}
UNREADABLE_ANSWER = (AssertionError, json.JSONDecodeError, StoneValidationError)
"""What the SDK raises when it cannot read an answer (an HTML page from a proxy)."""
_CREDENTIALS_400 = re.compile(
    r"invalid_client|unauthorized_client|access token|refresh token|scope|not permitted|"
    r"app key|client_id|disabled",
    re.IGNORECASE,
)
"""A 400 (BadInputError) whose message names the app's credentials: the operator's to fix."""


def translate(exc: Exception, path: str, token_variable: str) -> AgentLinkError:
    """The AgentLink error for an SDK or network exception met while storing ``path``."""
    if isinstance(exc, dbx.ApiError):
        return _route_error(exc, path)
    if isinstance(exc, dbx.HttpError):
        return _http_error(exc, path, token_variable)
    if isinstance(exc, dbx.DropboxException):
        return StorageUnavailableError(f"Dropbox error: {exc}")
    kind = "timed out" if "timeout" in type(exc).__name__.lower() else "unreachable"
    return StorageUnavailableError(f"Dropbox {kind} ({type(exc).__name__}): {exc}")


def _http_error(exc: Any, path: str, token_variable: str) -> AgentLinkError:
    if isinstance(exc, dbx.AuthError):
        return StorageConfigError(_auth_message(exc, token_variable))
    if isinstance(exc, dbx.RateLimitError):
        reason = (error_tags(getattr(exc.error, "reason", None)) or ["too_many_requests"])[0]
        retry_after_s = float(exc.backoff) if exc.backoff is not None else None
        return StorageUnavailableError(
            f"Dropbox rate limit ({reason}); it asks to retry after {retry_after_s} s",
            retry_after_s=retry_after_s,
        )
    if isinstance(exc, dbx.BadInputError):
        message = f"Dropbox refused the request for {path}: {exc.message}"
        if _CREDENTIALS_400.search(str(exc.message)):
            return StorageConfigError(
                f"{message}; check DROPBOX_APP_KEY, DROPBOX_APP_SECRET and "
                f"{token_variable}, then run `agentlink dropbox check`"
            )
        return StorageRejectedError(message)
    if isinstance(exc, dbx.PathRootError):
        return StorageConfigError(f"Dropbox rejected the namespace (path root): {exc.error}")
    # 5xx (InternalServerError) and anything else HTTP: the server's trouble, not ours.
    return StorageUnavailableError(
        f"Dropbox answered HTTP {exc.status_code} (request {exc.request_id}): {str(exc.body)[:200]}"
    )


def _route_error(exc: Any, path: str) -> AgentLinkError:
    tags = error_tags(exc.error)
    summary = "/".join(tags) or str(exc.error)
    for tag in tags:
        if tag in _RETRY_TAGS:
            return StorageUnavailableError(f"Dropbox is busy with {path} ({summary}); will retry")
        if tag in _CONFIG_TAGS:
            return StorageConfigError(f"Dropbox refused {path} ({summary}): {_CONFIG_TAGS[tag]}")
        if tag in _REJECT_TAGS:
            return StorageRejectedError(f"Dropbox refused {path} ({summary}): {_REJECT_TAGS[tag]}")
    # Unknown or racy (a session or file not found yet): a later attempt may well work.
    return StorageUnavailableError(f"Dropbox error for {path}: {summary}")


def _auth_message(exc: Any, token_variable: str) -> str:
    error = exc.error
    tags = error_tags(error)
    tag = tags[0] if tags else "other"
    fix = "then restart the workers and run `agentlink dropbox check`"
    if tag == "missing_scope":
        scope = error.get_missing_scope().required_scope
        return (
            f"the Dropbox app lacks the scope {scope}: tick it in the App Console "
            f"(Permissions), then create a new {token_variable} (a token keeps the "
            f"scopes it was granted with); {fix}"
        )
    if tag == "expired_access_token":
        return (
            f"the Dropbox access token expired and cannot be refreshed: use "
            f"DROPBOX_REFRESH_TOKEN with DROPBOX_APP_KEY and DROPBOX_APP_SECRET; {fix}"
        )
    if tag == "invalid_access_token":
        return (
            f"Dropbox rejected {token_variable} (invalid or revoked; a refresh "
            f"token dies when the app is unlinked): create a new one; {fix}"
        )
    if tag == "user_suspended":
        return f"the Dropbox account is suspended; {fix}"
    return f"Dropbox refused the credentials ({tag}); {fix}"


def error_tags(error: Any) -> list[str]:
    """The tags along a Dropbox error union: ``["path", "insufficient_space"]``.

    Unions nest either directly (``UploadSessionFinishError.path`` holds a ``WriteError``)
    or through a struct's ``reason`` (``UploadError.path`` holds ``UploadWriteFailed``).
    """
    tags: list[str] = []
    node = error
    while isinstance(getattr(node, "_tag", None), str) and len(tags) < 8:
        tags.append(node._tag)
        node = node._value
        if node is not None and not hasattr(node, "_tag"):
            node = getattr(node, "reason", None)
    return tags
