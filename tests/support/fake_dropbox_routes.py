"""The routes of the fake Dropbox (tests/support/fake_dropbox.py): files, upload sessions,
shared links and the account, answering as Dropbox does, route errors included.

``DropboxRoutes`` is the fake's half that knows Dropbox's behaviour; ``FakeDropbox`` adds
the state's set-up, the faults, authentication and the wire. A route is the method
``_r_<route with / as _>``; it returns the JSON answer or raises ``Reply``.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

APP_KEY = "fake-app-key"
APP_SECRET = "fake-app-secret"
ROUTE_SCOPES = {
    "files/upload": "files.content.write",
    "files/upload_session/start": "files.content.write",
    "files/upload_session/append_v2": "files.content.write",
    "files/upload_session/finish": "files.content.write",
    "files/delete_v2": "files.content.write",
    "sharing/create_shared_link_with_settings": "sharing.write",
    "sharing/list_shared_links": "sharing.read",
    "users/get_current_account": "account_info.read",
    "users/get_space_usage": "account_info.read",
}

DISALLOWED_NAMES = frozenset({"desktop.ini", "thumbs.db", ".ds_store", ".dropbox", ".dropbox.attr"})
BLOCK_BYTES = 4 * 1024 * 1024


def content_hash(data: bytes) -> str:
    """Dropbox's content hash: SHA-256 of the SHA-256s of each 4 MiB block."""
    blocks = b"".join(
        hashlib.sha256(data[i : i + BLOCK_BYTES]).digest() for i in range(0, len(data), BLOCK_BYTES)
    )
    return hashlib.sha256(blocks).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StoredFile:
    """A file in the fake Dropbox."""

    path_display: str
    data: bytes
    rev: str
    id: str
    server_modified: str

    def metadata(self, *, tag: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {".tag": "file"} if tag else {}
        meta.update(
            name=self.path_display.rsplit("/", 1)[-1],
            path_lower=self.path_display.lower(),
            path_display=self.path_display,
            id=self.id,
            client_modified=self.server_modified,
            server_modified=self.server_modified,
            rev=self.rev,
            size=len(self.data),
            is_downloadable=True,
            content_hash=content_hash(self.data),
        )
        return meta


@dataclass
class Session:
    """An upload session."""

    data: bytearray
    closed: bool = False


class Reply(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside a route to answer at once."""

    def __init__(self, status: int, body: dict[str, Any] | str, **headers: str) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


def route_error(summary: str, error: dict[str, Any]) -> Reply:
    """A 409 route error, as Dropbox sends it."""
    return Reply(409, {"error_summary": f"{summary}/..", "error": error})


class DropboxRoutes:
    """What Dropbox does with tokens, files, sessions, links and the account; the state it
    works on is ``FakeDropbox``'s (declared here)."""

    files: dict[str, StoredFile]
    links: dict[str, str]
    sessions: dict[str, Session]
    allocated_bytes: int
    link_metadata_on_conflict: bool
    _revision: int
    tokens: dict[str, str]
    scopes: set[str]
    refresh_tokens: set[str]
    app_secret: str
    expires_in_s: int

    issue_access_token: Callable[[], str]  # FakeDropbox's

    def _authorise(self, route: str, headers: Any) -> str:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise Reply(
                400, 'Error in call to API function: Must provide HTTP header "Authorization"'
            )
        token = str(auth).removeprefix("Bearer ")
        state = self.tokens.get(token)
        if state == "expired":
            raise Reply(
                401,
                {
                    "error_summary": "expired_access_token/..",
                    "error": {".tag": "expired_access_token"},
                },
            )
        if state != "valid":
            raise Reply(
                401,
                {
                    "error_summary": "invalid_access_token/..",
                    "error": {".tag": "invalid_access_token"},
                },
            )
        scope = ROUTE_SCOPES[route]
        if scope not in self.scopes:
            raise Reply(
                401,
                {
                    "error_summary": "missing_scope/..",
                    "error": {".tag": "missing_scope", "required_scope": scope},
                },
            )
        return token

    def _token(self, body: bytes) -> Reply:
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("grant_type") != "refresh_token":
            return Reply(400, {"error": "unsupported_grant_type"})
        if (
            form.get("client_id") != APP_KEY
            or form.get("client_secret", self.app_secret) != self.app_secret
        ):
            return Reply(
                400, {"error": "invalid_client", "error_description": "Invalid client_id or secret"}
            )
        if form.get("refresh_token") not in self.refresh_tokens:
            return Reply(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "refresh token is invalid or revoked",
                },
            )
        token = self.issue_access_token()
        return Reply(
            200, {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in_s}
        )

    # -- files --------------------------------------------------------------------------------

    def _commit(self, commit: dict[str, Any], data: bytes, write_failed: Any) -> dict[str, Any]:
        """Write ``data`` as ``commit`` says; ``write_failed(reason)`` builds the route error."""
        path = commit["path"]
        name = path.rsplit("/", 1)[-1]
        if not path.startswith("/") or path.endswith("/") or "//" in path or not name:
            raise write_failed({".tag": "malformed_path"}, "malformed_path")
        if name.lower() in DISALLOWED_NAMES:
            raise write_failed({".tag": "disallowed_name"}, "disallowed_name")
        mode = commit.get("mode") or "add"
        mode = mode if isinstance(mode, str) else mode[".tag"]
        existing = self.files.get(path.lower())
        if existing is not None and existing.data == data:
            return existing.metadata()  # Dropbox keeps the rev when nothing changed
        if existing is not None and mode == "add":
            raise write_failed({".tag": "conflict", "conflict": {".tag": "file"}}, "conflict/file")
        replaced = len(existing.data) if existing else 0
        if self.used_bytes - replaced + len(data) > self.allocated_bytes:
            raise write_failed({".tag": "insufficient_space"}, "insufficient_space")
        self._revision += 1
        stored = StoredFile(
            path_display=existing.path_display if existing else path,
            data=data,
            rev=f"{self._revision:09x}{secrets.token_hex(4)}",
            id=existing.id if existing else "id:" + secrets.token_urlsafe(12),
            server_modified=_now(),
        )
        self.files[path.lower()] = stored
        return stored.metadata()

    @property
    def used_bytes(self) -> int:
        """Bytes the stored files take."""
        return sum(len(f.data) for f in self.files.values())

    def _r_files_upload(self, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
        session_id = "pid_upload_session:" + secrets.token_hex(6)

        def failed(reason: dict[str, Any], summary: str) -> Reply:
            return route_error(
                f"path/{summary}",
                {".tag": "path", "reason": reason, "upload_session_id": session_id},
            )

        return self._commit(arg, body, failed)

    def _r_files_upload_session_start(
        self, arg: dict[str, Any] | None, body: bytes
    ) -> dict[str, Any]:
        session_id = "pid_upload_session:" + secrets.token_hex(12)
        self.sessions[session_id] = Session(bytearray(body), closed=bool((arg or {}).get("close")))
        return {"session_id": session_id}

    def _session(self, cursor: dict[str, Any], wrap: Any) -> Session:
        session = self.sessions.get(cursor["session_id"])
        if session is None:
            raise wrap({".tag": "not_found"}, "not_found")
        if cursor["offset"] != len(session.data):
            raise wrap(
                {".tag": "incorrect_offset", "correct_offset": len(session.data)},
                "incorrect_offset",
            )
        if session.closed:
            raise wrap({".tag": "closed"}, "closed")
        return session

    def _r_files_upload_session_append_v2(self, arg: dict[str, Any], body: bytes) -> None:
        def failed(error: dict[str, Any], summary: str) -> Reply:
            return route_error(summary, error)

        session = self._session(arg["cursor"], failed)
        session.data += body
        session.closed = bool(arg.get("close"))

    def _r_files_upload_session_finish(self, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
        def lookup_failed(error: dict[str, Any], summary: str) -> Reply:
            return route_error(
                f"lookup_failed/{summary}", {".tag": "lookup_failed", "lookup_failed": error}
            )

        def path_failed(error: dict[str, Any], summary: str) -> Reply:
            return route_error(f"path/{summary}", {".tag": "path", "path": error})

        session = self._session(arg["cursor"], lookup_failed)
        data = bytes(session.data + body)
        metadata = self._commit(arg["commit"], data, path_failed)
        del self.sessions[arg["cursor"]["session_id"]]
        return metadata

    def _r_files_delete_v2(self, arg: dict[str, Any], _body: bytes) -> dict[str, Any]:
        stored = self.files.pop(arg["path"].lower(), None)
        if stored is None:
            raise route_error(
                "path_lookup/not_found",
                {".tag": "path_lookup", "path_lookup": {".tag": "not_found"}},
            )
        self.links.pop(arg["path"].lower(), None)
        return {"metadata": stored.metadata(tag=True)}

    # -- sharing ------------------------------------------------------------------------------

    def _link_metadata(self, path_lower: str) -> dict[str, Any]:
        stored = self.files[path_lower]
        meta = stored.metadata()
        return {
            ".tag": "file",
            "url": self.links[path_lower],
            "name": meta["name"],
            "path_lower": path_lower,
            "id": stored.id,
            "link_permissions": {
                "can_revoke": True,
                "visibility_policies": [],
                "can_set_expiry": False,
                "can_remove_expiry": False,
                "allow_download": True,
                "can_allow_download": True,
                "can_disallow_download": False,
                "allow_comments": True,
                "team_restricts_comments": False,
            },
            "client_modified": meta["client_modified"],
            "server_modified": meta["server_modified"],
            "rev": meta["rev"],
            "size": meta["size"],
        }

    def _r_sharing_create_shared_link_with_settings(
        self, arg: dict[str, Any], _body: bytes
    ) -> dict[str, Any]:
        path_lower = arg["path"].lower()
        if path_lower not in self.files:
            raise route_error("path/not_found", {".tag": "path", "path": {".tag": "not_found"}})
        if path_lower in self.links:
            exists: dict[str, Any] = {".tag": "shared_link_already_exists"}
            if self.link_metadata_on_conflict:
                exists["shared_link_already_exists"] = {
                    ".tag": "metadata",
                    "metadata": self._link_metadata(path_lower),
                }
            raise route_error("shared_link_already_exists", exists)
        name = urllib.parse.quote(self.files[path_lower].path_display.rsplit("/", 1)[-1])
        self.links[path_lower] = (
            f"https://www.dropbox.com/scl/fi/{secrets.token_hex(10)}/{name}"
            f"?rlkey={secrets.token_hex(12)}&dl=0"
        )
        return self._link_metadata(path_lower)

    def _r_sharing_list_shared_links(
        self, arg: dict[str, Any] | None, _body: bytes
    ) -> dict[str, Any]:
        path = (arg or {}).get("path")
        if path is not None and path.lower() not in self.files:
            raise route_error("path/not_found", {".tag": "path", "path": {".tag": "not_found"}})
        paths = [path.lower()] if path is not None else list(self.links)
        return {
            "links": [self._link_metadata(p) for p in paths if p in self.links],
            "has_more": False,
        }

    # -- users --------------------------------------------------------------------------------

    def _r_users_get_current_account(self, _arg: None, _body: bytes) -> dict[str, Any]:
        return {
            "account_id": "dbid:" + "A" * 35,
            "name": {
                "given_name": "Pat",
                "surname": "Agent",
                "familiar_name": "Pat",
                "display_name": "Pat Agent",
                "abbreviated_name": "PA",
            },
            "email": "pat@example.com",
            "email_verified": True,
            "disabled": False,
            "locale": "en",
            "referral_link": "https://db.tt/fake",
            "is_paired": False,
            "account_type": {".tag": "basic"},
            "root_info": {".tag": "user", "root_namespace_id": "1", "home_namespace_id": "1"},
            "country": "AU",
        }

    def _r_users_get_space_usage(self, _arg: None, _body: bytes) -> dict[str, Any]:
        return {
            "used": self.used_bytes,
            "allocation": {".tag": "individual", "allocated": self.allocated_bytes},
        }
