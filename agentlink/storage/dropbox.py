"""Reports in the user's Dropbox, through the official SDK.

Each report goes to a path that depends only on the job (``AGENTLINK_DROPBOX_FOLDER`` +
the report path, or ``AGENTLINK_DROPBOX_PATH_TEMPLATE``), written with
``WriteMode.overwrite``, so a redelivered job replaces its own file instead of adding a
second one. Every report gets a shared link, which becomes the job's ``result.url``.

This module is the only place that catches ``dropbox.*`` exceptions, and
``dropbox_errors.translate`` maps them onto AgentLink's tree, which tells the consumer
what to do with the job (retry, fail it, or pause for the operator).

The SDK's own retries are bounded (its default retries a 429 forever) and so is its
timeout. The SDK reads ``DROPBOX_API_HOST`` / ``DROPBOX_API_CONTENT_HOST`` when it is
imported and trusts ``REQUESTS_CA_BUNDLE`` through requests' environment trust; we keep
both working by letting the SDK create its own ``requests`` session.
"""

from __future__ import annotations

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

from agentlink.errors import StorageConfigError, StorageUnavailableError
from agentlink.jobs import JobResult
from agentlink.settings import MIB, Settings
from agentlink.storage.dropbox_errors import UNREADABLE_ANSWER, error_tags, translate

log = structlog.get_logger(__name__)

CHUNK_BYTES = 8 * MIB
"""Upload-session chunk size: a multiple of 4 MiB, as Dropbox recommends."""

_REPORT_PATH = re.compile(
    r"^(?P<state>[^/]+)/(?P<suburb>[^/]+)/"
    r"(?P<filename>(?P<kind>[a-z]+)-[^/]*-(?P<date>\d{4}-\d{2}-\d{2})-(?P<job8>[^-/]+)\.pdf)$"
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
                if "not_found" not in error_tags(exc.error):
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
            if error_tags(exc.error)[:1] != ["shared_link_already_exists"]:
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
            error = translate(exc, path, self._token_variable)
            if isinstance(error, StorageConfigError):
                self._forget_client()
                self._probe_writes = self._probe_writes or isinstance(exc, dbx.ApiError)
            raise error from exc
        except UNREADABLE_ANSWER as exc:
            # The SDK asserts the Content-Type and decodes the body itself: an answer it
            # cannot read (an HTML error page from a proxy, a cut-off body) is the wire's
            # trouble, not the job's, so it is retried like a 5xx.
            raise StorageUnavailableError(
                f"Dropbox sent an answer the SDK could not read ({type(exc).__name__}): "
                f"{str(exc)[:200]}"
            ) from exc

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
        error = translate(exc, path or self.folder or "/", self._token_variable)
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
