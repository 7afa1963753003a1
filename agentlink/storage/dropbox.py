"""Reports in the user's Dropbox, through the official SDK.

Each report goes to a path that depends only on the job (``AGENTLINK_DROPBOX_FOLDER`` +
the report path, or ``AGENTLINK_DROPBOX_PATH_TEMPLATE``), written with
``WriteMode.overwrite``, so a redelivered job replaces its own file instead of adding a
second one. Every report gets a shared link, which becomes the job's ``result.url``.

This module is the only place that catches ``dropbox.*`` exceptions: ``_translate`` maps
them onto AgentLink's tree, which tells the consumer what to do with the job —

- ``StorageUnavailableError`` (retry): 429 and ``too_many_write_operations`` (with the
  server's ``retry_after``), 5xx, network errors, timeouts, answers the SDK cannot read;
- ``StorageRejectedError`` (fail the job): a full Dropbox, a path Dropbox refuses;
- ``StorageConfigError`` (not the job's fault: pause): invalid, revoked or expired
  credentials, a missing scope, no permission to write the folder.

The SDK's own retries are bounded (its default retries a 429 forever) and so is its
timeout. The SDK reads ``DROPBOX_API_HOST`` / ``DROPBOX_API_CONTENT_HOST`` when it is
imported and trusts ``REQUESTS_CA_BUNDLE`` through requests' environment trust; we keep
both working by letting the SDK create its own ``requests`` session.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dropbox
import structlog
from dropbox import exceptions as dbx
from dropbox.dropbox_client import BadInputException
from dropbox.files import CommitInfo, UploadSessionCursor, WriteMode
from stone.backends.python_rsrc.stone_validators import ValidationError as StoneValidationError

from agentlink.errors import (
    AgentLinkError,
    StorageConfigError,
    StorageRejectedError,
    StorageUnavailableError,
)
from agentlink.jobs import JobResult
from agentlink.settings import MIB, Settings

log = structlog.get_logger(__name__)

CHUNK_BYTES = 8 * MIB
"""Upload-session chunk size: a multiple of 4 MiB, as Dropbox recommends."""

_REPORT_PATH = re.compile(
    r"^(?P<state>[^/]+)/(?P<suburb>[^/]+)/"
    r"(?P<filename>(?P<kind>[a-z]+)-[^/]*-(?P<date>\d{4}-\d{2}-\d{2})-(?P<job8>[^-/]+)\.pdf)$"
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
_UNREADABLE_ANSWER = (AssertionError, json.JSONDecodeError, StoneValidationError)
_CREDENTIALS_400 = re.compile(
    r"invalid_client|unauthorized_client|access token|refresh token|scope|not permitted|"
    r"app key|client_id|disabled",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class CheckStep:
    """One line of ``agentlink dropbox check``."""

    name: str
    ok: bool
    detail: str


class DropboxStorage:
    """Uploads reports below a Dropbox folder and shares them; one SDK client per process."""

    name = "dropbox"

    def __init__(self, settings: Settings, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        """The storage ``AGENTLINK_STORAGE=dropbox`` and the ``DROPBOX_*`` settings describe
        (``chunk_bytes``: the upload-session chunk, smaller in tests)."""
        self.folder = settings.dropbox_folder.rstrip("/")
        self.path_template = settings.dropbox_path_template
        self.session_threshold_bytes = settings.dropbox_session_threshold_bytes
        self.chunk_bytes = chunk_bytes
        self._app_key = settings.dropbox_app_key
        self._app_secret = settings.dropbox_app_secret
        self._refresh_token = settings.dropbox_refresh_token
        self._access_token = settings.dropbox_access_token
        self._timeout_s = settings.dropbox_timeout_s
        self._max_retries = settings.dropbox_max_retries
        self._max_rate_limit_retries = settings.dropbox_max_rate_limit_retries
        self._token_variable = settings.dropbox_auth
        self._lock = threading.Lock()
        self._dbx: Any = None
        # Set when Dropbox refused a write or a link for configuration reasons (permission,
        # unverified e-mail): then check() must try a real write, or it would pass at once.
        self._probe_writes = False

    # -- the Storage protocol ---------------------------------------------------------------------

    def save(self, relative_path: str, pdf: bytes) -> JobResult:
        """Upload ``pdf`` (overwriting), share it, and return its path, link and size."""
        path = self.dropbox_path(relative_path)
        client = self._client()
        session = len(pdf) > self.session_threshold_bytes
        with self._translating(path):
            if session:
                meta = self._upload_in_session(client, path, pdf)
            else:
                meta = client.files_upload(pdf, path, mode=WriteMode.overwrite)
            url, reused = self._shared_link(client, str(meta.path_lower or path))
        log.info(
            "dropbox.stored",
            path=meta.path_display,
            rev=meta.rev,
            bytes=meta.size,
            content_hash=meta.content_hash,
            upload_session=session,
            link="reused" if reused else "created",
        )
        return JobResult(
            storage=self.name,
            path=str(meta.path_display or path),
            url=url,
            bytes=int(meta.size),
            rev=str(meta.rev or ""),
        )

    def check(self) -> None:
        """Credentials and scopes work; cheap, and normally without writing a file.

        ``StorageConfigError`` if Dropbox rejects the credentials or a scope AgentLink needs
        (``account_info.read``, ``files.content.write``, ``sharing.write``);
        ``StorageUnavailableError`` if Dropbox cannot be reached or is overloaded. After a
        save failed on a permission, it writes, shares and deletes a probe file instead.
        """
        client = self._client()
        probe = f"{self.folder}/.agentlink-probe-{secrets.token_hex(8)}.txt"
        with self._translating(probe):
            client.users_get_current_account()
            if self._probe_writes:
                client.files_upload(b"AgentLink probe\n", probe, mode=WriteMode.overwrite)
                self._shared_link(client, probe)
                client.files_delete_v2(probe)
                self._probe_writes = False
                return
            # An empty, closed upload session proves files.content.write; it expires unused.
            client.files_upload_session_start(b"", close=True)
            try:
                # The scope is checked before the path, so not_found proves sharing.write.
                client.sharing_create_shared_link_with_settings(probe)
            except dbx.ApiError as exc:
                if "not_found" not in _tags(exc.error):
                    raise

    # -- paths ------------------------------------------------------------------------------------

    def dropbox_path(self, relative_path: str) -> str:
        """``NSW/Manly/agents-….pdf`` -> ``/AgentLink/NSW/Manly/agents-….pdf`` (or the template)."""
        if self.path_template == "{path}":
            rendered = relative_path
        else:
            match = _REPORT_PATH.match(relative_path)
            if match is None:
                raise StorageConfigError(
                    f"AGENTLINK_DROPBOX_PATH_TEMPLATE needs report paths like "
                    f"STATE/Suburb/kind-Suburb-YYYY-MM-DD-jobid.pdf, got {relative_path!r}; "
                    "use the default template {path}"
                )
            fields = match.groupdict()
            fields.update(path=relative_path, year=fields["date"][:4], month=fields["date"][5:7])
            rendered = self.path_template.format(**fields)
        return f"{self.folder}/{rendered.lstrip('/')}"

    # -- the SDK ----------------------------------------------------------------------------------

    def _client(self) -> Any:
        """The process's SDK client, created on first use (credentials are checked then)."""
        with self._lock:
            if self._dbx is None:
                try:
                    self._dbx = dropbox.Dropbox(
                        oauth2_access_token=self._access_token or None,
                        oauth2_refresh_token=self._refresh_token or None,
                        app_key=self._app_key or None,
                        app_secret=self._app_secret or None,
                        max_retries_on_error=self._max_retries,
                        max_retries_on_rate_limit=self._max_rate_limit_retries,
                        timeout=self._timeout_s,
                        user_agent="AgentLink",
                    )
                except BadInputException as exc:
                    raise StorageConfigError(f"Dropbox credentials are incomplete: {exc}") from exc
                log.info(
                    "dropbox.client_created",
                    auth="refresh_token" if self._refresh_token else "access_token",
                    folder=self.folder or "/",
                )
            return self._dbx

    def _forget_client(self) -> None:
        """Drop the client after an auth failure, so the next call signs in afresh."""
        with self._lock:
            client, self._dbx = self._dbx, None
        if client is not None:
            client.close()

    def _upload_in_session(self, client: Any, path: str, pdf: bytes) -> Any:
        chunk = self.chunk_bytes
        started = client.files_upload_session_start(pdf[:chunk])
        cursor = UploadSessionCursor(session_id=started.session_id, offset=min(chunk, len(pdf)))
        while len(pdf) - cursor.offset > chunk:
            client.files_upload_session_append_v2(
                pdf[cursor.offset : cursor.offset + chunk], cursor
            )
            cursor.offset += chunk
        commit = CommitInfo(path=path, mode=WriteMode.overwrite)
        return client.files_upload_session_finish(pdf[cursor.offset :], cursor, commit)

    def _shared_link(self, client: Any, path: str) -> tuple[str, bool]:
        """The file's shared link, and whether it existed already."""
        try:
            return str(client.sharing_create_shared_link_with_settings(path).url), False
        except dbx.ApiError as exc:
            if _tags(exc.error)[:1] != ["shared_link_already_exists"]:
                raise
            existing = exc.error.get_shared_link_already_exists()
            if existing is not None and existing.is_metadata():
                return str(existing.get_metadata().url), True
        links = client.sharing_list_shared_links(path=path, direct_only=True).links
        if not links:
            raise StorageUnavailableError(
                f"Dropbox says {path} has a shared link but lists none; will retry"
            )
        return str(links[0].url), True

    # -- errors -----------------------------------------------------------------------------------

    @contextmanager
    def _translating(self, path: str) -> Iterator[None]:
        try:
            yield
        except (dbx.DropboxException, OSError) as exc:
            error = self._translate(exc, path)
            if isinstance(error, StorageConfigError):
                self._forget_client()
                self._probe_writes = self._probe_writes or isinstance(exc, dbx.ApiError)
            raise error from exc
        except _UNREADABLE_ANSWER as exc:
            # The SDK asserts the Content-Type and decodes the body itself: an answer it
            # cannot read (an HTML error page from a proxy, a cut-off body) is the wire's
            # trouble, not the job's, so it is retried like a 5xx.
            raise StorageUnavailableError(
                f"Dropbox sent an answer the SDK could not read ({type(exc).__name__}): "
                f"{str(exc)[:200]}"
            ) from exc

    def _translate(self, exc: Exception, path: str) -> AgentLinkError:
        """The AgentLink error for an SDK or network exception met while storing ``path``."""
        if isinstance(exc, dbx.ApiError):
            return self._route_error(exc, path)
        if isinstance(exc, dbx.HttpError):
            return self._http_error(exc, path)
        if isinstance(exc, dbx.DropboxException):
            return StorageUnavailableError(f"Dropbox error: {exc}")
        kind = "timed out" if "timeout" in type(exc).__name__.lower() else "unreachable"
        return StorageUnavailableError(f"Dropbox {kind} ({type(exc).__name__}): {exc}")

    def _http_error(self, exc: Any, path: str) -> AgentLinkError:
        if isinstance(exc, dbx.AuthError):
            return StorageConfigError(self._auth_message(exc))
        if isinstance(exc, dbx.RateLimitError):
            reason = (_tags(getattr(exc.error, "reason", None)) or ["too_many_requests"])[0]
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
                    f"{self._token_variable}, then run `agentlink dropbox check`"
                )
            return StorageRejectedError(message)
        if isinstance(exc, dbx.PathRootError):
            return StorageConfigError(f"Dropbox rejected the namespace (path root): {exc.error}")
        # 5xx (InternalServerError) and anything else HTTP: the server's trouble, not ours.
        return StorageUnavailableError(
            f"Dropbox answered HTTP {exc.status_code} (request {exc.request_id}): "
            f"{str(exc.body)[:200]}"
        )

    def _route_error(self, exc: Any, path: str) -> AgentLinkError:
        tags = _tags(exc.error)
        summary = "/".join(tags) or str(exc.error)
        for tag in tags:
            if tag in _RETRY_TAGS:
                return StorageUnavailableError(
                    f"Dropbox is busy with {path} ({summary}); will retry"
                )
            if tag in _CONFIG_TAGS:
                return StorageConfigError(
                    f"Dropbox refused {path} ({summary}): {_CONFIG_TAGS[tag]}"
                )
            if tag in _REJECT_TAGS:
                return StorageRejectedError(
                    f"Dropbox refused {path} ({summary}): {_REJECT_TAGS[tag]}"
                )
        # Unknown or racy (a session or file not found yet): a later attempt may well work.
        return StorageUnavailableError(f"Dropbox error for {path}: {summary}")

    def _auth_message(self, exc: Any) -> str:
        error = exc.error
        tags = _tags(error)
        tag = tags[0] if tags else "other"
        fix = "then restart the workers and run `agentlink dropbox check`"
        if tag == "missing_scope":
            scope = error.get_missing_scope().required_scope
            return (
                f"the Dropbox app lacks the scope {scope}: tick it in the App Console "
                f"(Permissions), then create a new {self._token_variable} (a token keeps the "
                f"scopes it was granted with); {fix}"
            )
        if tag == "expired_access_token":
            return (
                f"the Dropbox access token expired and cannot be refreshed: use "
                f"DROPBOX_REFRESH_TOKEN with DROPBOX_APP_KEY and DROPBOX_APP_SECRET; {fix}"
            )
        if tag == "invalid_access_token":
            return (
                f"Dropbox rejected {self._token_variable} (invalid or revoked; a refresh "
                f"token dies when the app is unlinked): create a new one; {fix}"
            )
        if tag == "user_suspended":
            return f"the Dropbox account is suspended; {fix}"
        return f"Dropbox refused the credentials ({tag}); {fix}"

    # -- agentlink dropbox check ------------------------------------------------------------------

    def checks(self) -> Iterator[CheckStep]:
        """The steps of ``agentlink dropbox check``; stops at the first that fails."""
        client = self._client()
        try:
            account = client.users_get_current_account()
        except (dbx.DropboxException, OSError) as exc:
            yield CheckStep("account", False, self._describe(exc))
            return
        yield CheckStep(
            "account",
            True,
            f"{account.name.display_name} <{account.email}> via {dropbox.session.API_HOST}",
        )
        try:
            usage = client.users_get_space_usage()
        except (dbx.DropboxException, OSError) as exc:
            yield CheckStep("space", False, self._describe(exc))
            return
        yield _space_step(usage)
        probe = f"{self.folder}/.agentlink-check-{secrets.token_hex(4)}.txt"
        try:
            client.files_upload(
                b"AgentLink write test; safe to delete.\n", probe, mode=WriteMode.overwrite
            )
        except (dbx.DropboxException, OSError) as exc:
            yield CheckStep("write", False, self._describe(exc, probe))
            return
        try:
            self._shared_link(client, probe)
            client.sharing_list_shared_links(path=probe, direct_only=True)
            sharing = CheckStep(
                "sharing", True, "created and listed a shared link (sharing.write, sharing.read)"
            )
        except (dbx.DropboxException, OSError) as exc:
            sharing = CheckStep("sharing", False, self._describe(exc, probe))
        try:
            client.files_delete_v2(probe)
            yield CheckStep("write", True, f"wrote and deleted {probe}")
        except (dbx.DropboxException, OSError) as exc:
            yield CheckStep("write", False, f"wrote {probe} but {self._describe(exc, probe)}")
        yield sharing

    def _describe(self, exc: Exception, path: str | None = None) -> str:
        error = self._translate(exc, path or self.folder or "/")
        return f"{error} [{type(error).__name__}]"


def _space_step(usage: Any) -> CheckStep:
    allocation = usage.allocation
    if allocation.is_individual():
        allocated = int(allocation.get_individual().allocated)
    elif allocation.is_team():
        allocated = int(allocation.get_team().allocated)
    else:
        return CheckStep("space", True, f"{_size(int(usage.used))} used (allocation unknown)")
    free = allocated - int(usage.used)
    detail = f"{_size(max(free, 0))} free of {_size(allocated)}"
    return CheckStep("space", free > 0, detail if free > 0 else f"Dropbox is full: {detail}")


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _tags(error: Any) -> list[str]:
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
