"""A fake Dropbox API over HTTPS, so the tests run the real SDK end to end.

It speaks the wire format the SDK speaks: RPC routes take a JSON body; upload routes take
the argument as JSON in the ``Dropbox-API-Arg`` header and the bytes as an
``application/octet-stream`` body; successes are ``Content-Type: application/json``
exactly (the SDK asserts it); route errors are ``409`` with Dropbox's error unions
(``{"error_summary": "path/insufficient_space/..", "error": {".tag": "path", ...}}``);
``401`` carries ``expired_access_token`` / ``invalid_access_token`` / ``missing_scope``;
``429`` carries ``retry_after`` in the body and in ``Retry-After``; ``/oauth2/token`` takes
a form-encoded ``refresh_token`` grant and answers ``400 invalid_grant`` once revoked.

State is kept the way Dropbox keeps it: files by lower-cased path with a rev and content
hash (checked against the one the SDK sends), upload sessions with offsets, one shared
link per file, an account with a space allocation, tokens with scopes.

Faults are programmable: ``fake.fail("files/upload", times=2, status=503)`` makes the next
two calls of that route fail before they do anything; see ``Fault`` for the kinds.

The server binds its port when constructed, before it serves: the SDK reads
``DROPBOX_API_HOST`` when it is imported, so the host must be known by then. It serves
TLS with a certificate signed by a CA made at test time (``make_certificates``); clients
trust it through ``REQUESTS_CA_BUNDLE``, as an operator trusts a Dropbox-compatible host.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

APP_KEY = "fake-app-key"
APP_SECRET = "fake-app-secret"
SCOPES = frozenset({"account_info.read", "files.content.write", "sharing.read", "sharing.write"})
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
UPLOAD_ROUTES = frozenset(
    {
        "files/upload",
        "files/upload_session/start",
        "files/upload_session/append_v2",
        "files/upload_session/finish",
    }
)
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


def point_sdk_at(fake: FakeDropbox) -> None:
    """Set ``DROPBOX_API_HOST`` and ``DROPBOX_API_CONTENT_HOST`` to the fake, for good.

    The SDK reads them once, when ``dropbox`` is first imported; call this before that.
    If something imported the SDK earlier, its hosts are fixed elsewhere: fail loudly
    rather than let the tests talk to the real Dropbox.
    """
    os.environ["DROPBOX_API_HOST"] = fake.host
    os.environ["DROPBOX_API_CONTENT_HOST"] = fake.host
    session = sys.modules.get("dropbox.session")
    if session is not None and fake.host != session.API_HOST:
        raise RuntimeError(
            "the dropbox SDK was imported before the fake Dropbox could set DROPBOX_API_HOST; "
            "import agentlink.storage.dropbox lazily (create_storage does) in the code under test"
        )


# -- TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A CA (what clients trust) and the server certificate it signed."""

    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throw-away CA and a certificate for 127.0.0.1 and localhost, made with ``openssl``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_extensions = [
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    ]
    make_ca = ["req", "-x509", *new_key, "-keyout", ca_key, "-out", ca, "-days", "2"]
    make_csr = ["req", *new_key, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"]
    sign = ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "2"]
    for args in (
        [*make_ca, "-subj", "/CN=AgentLink test CA", *ca_extensions],
        make_csr,
        [*sign, "-days", "2", "-out", cert, "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return Certificates(ca=ca, cert=cert, key=key)


# -- faults and records ---------------------------------------------------------------------------


@dataclass
class Fault:
    """How the next ``times`` calls of ``route`` fail (``"*"``: any route).

    ``status`` with ``body`` (JSON if a dict) and ``headers``; or ``drop`` (close the
    connection without an answer); or ``delay_s`` (answer normally, but late).
    """

    route: str
    times: int = 1
    status: int = 500
    body: dict[str, Any] | str = "Internal Server Error"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay_s: float = 0.0


@dataclass
class Call:
    """One request the fake received."""

    route: str
    arg: Any
    token: str | None
    body: bytes
    status: int = 0


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


class _Reply(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside a route to answer at once."""

    def __init__(self, status: int, body: dict[str, Any] | str, **headers: str) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


def route_error(summary: str, error: dict[str, Any]) -> _Reply:
    """A 409 route error, as Dropbox sends it."""
    return _Reply(409, {"error_summary": f"{summary}/..", "error": error})


# -- the fake -------------------------------------------------------------------------------------


class FakeDropbox:
    """The fake's state and routes; ``serve()`` starts answering on ``host``."""

    def __init__(self) -> None:
        self._server = _Server(self)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------------

    def serve(self, certificates: Certificates) -> None:
        """Answer HTTPS requests from a background thread."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificates.cert, certificates.key)
        self._server.tls = context
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-dropbox", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()

    def reset(self) -> None:
        """Back to an empty Dropbox with valid credentials and every scope."""
        with self._lock:
            self.files: dict[str, StoredFile] = {}
            self.links: dict[str, str] = {}
            self.sessions: dict[str, Session] = {}
            self.faults: list[Fault] = []
            self.calls: list[Call] = []
            self.refresh_token = "fake-refresh-token"  # what the tests configure
            self.refresh_tokens: set[str] = {self.refresh_token}  # what the fake accepts
            self.app_secret = APP_SECRET
            # access token -> "valid" | "expired" | "revoked"
            self.tokens: dict[str, str] = {}
            self.scopes: set[str] = set(SCOPES)
            self.allocated_bytes = 2 * 1024**3
            self.expires_in_s = 14400
            self.link_metadata_on_conflict = True
            self._revision = 0

    # -- what tests program -------------------------------------------------------------------

    def issue_access_token(self) -> str:
        """A valid access token, as an operator would paste into DROPBOX_ACCESS_TOKEN."""
        with self._lock:
            token = "sl.fake-" + secrets.token_hex(8)
            self.tokens[token] = "valid"
            return token

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires (refresh tokens still work)."""
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, "expired")

    def revoke(self) -> None:
        """The app is unlinked: refresh tokens and access tokens stop working."""
        with self._lock:
            self.refresh_tokens.clear()
            self.tokens = dict.fromkeys(self.tokens, "revoked")

    def new_refresh_token(self) -> str:
        """The operator authorises the app again and gets a new refresh token."""
        with self._lock:
            token = "fake-refresh-" + secrets.token_hex(8)
            self.refresh_tokens.add(token)
            return token

    def fail(self, route: str, times: int = 1, **how: Any) -> Fault:
        """The next ``times`` calls of ``route`` fail as ``how`` (``Fault``'s fields) says."""
        fault = Fault(route=route, times=times, **how)
        with self._lock:
            self.faults.append(fault)
        return fault

    def rate_limit(
        self,
        route: str,
        retry_after: int = 7,
        times: int = 1,
        reason: str = "too_many_requests",
    ) -> Fault:
        """429, with ``retry_after`` in the body and the ``Retry-After`` header."""
        body = {
            "error_summary": f"{reason}/..",
            "error": {"reason": {".tag": reason}, "retry_after": retry_after},
        }
        return self.fail(
            route, times, status=429, body=body, headers={"Retry-After": str(retry_after)}
        )

    def route_fault(self, route: str, summary: str, error: dict[str, Any], times: int = 1) -> Fault:
        """A 409 route error such as ``path/malformed_path``."""
        return self.fail(
            route, times, status=409, body={"error_summary": f"{summary}/..", "error": error}
        )

    def count(self, route: str) -> int:
        """How many calls of ``route`` the fake received."""
        return sum(call.route == route for call in self.calls)

    def file(self, path: str) -> StoredFile | None:
        """The stored file at ``path`` (any case)."""
        return self.files.get(path.lower())

    # -- requests -----------------------------------------------------------------------------

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[Fault | None, _Reply]:
        """Answer one POST; returns the fault that applied (if any) and the reply."""
        route = path.removeprefix("/2/").strip("/") if path.startswith("/2/") else path.strip("/")
        with self._lock:
            call = Call(route=route, arg=None, token=None, body=body)
            self.calls.append(call)
            fault = self._take_fault(route)
            if fault is not None:
                reply = _Reply(fault.status, fault.body, **fault.headers)
            else:
                try:
                    reply = self._route(route, headers, body, call)
                except _Reply as answer:
                    reply = answer
            call.status = reply.status
            return fault, reply

    def _take_fault(self, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.route in {route, "*"} and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _route(self, route: str, headers: Any, body: bytes, call: Call) -> _Reply:
        if route == "oauth2/token":
            return self._token(body)
        handler = getattr(self, "_r_" + route.replace("/", "_"), None)
        if handler is None:
            return _Reply(400, f'Unknown API function: "{route}"')
        call.token = self._authorise(route, headers)
        if route in UPLOAD_ROUTES:
            if headers.get("Content-Type") != "application/octet-stream":
                return _Reply(
                    400, 'Bad HTTP "Content-Type" header: expected application/octet-stream'
                )
            raw = headers.get("Dropbox-API-Arg", "")
            if not raw.isascii():
                return _Reply(400, 'HTTP header "Dropbox-API-Arg": must be ASCII-only JSON')
            arg = json.loads(raw or "null")
        else:
            if headers.get("Content-Type") != "application/json":
                return _Reply(400, 'Bad HTTP "Content-Type" header: expected application/json')
            arg = json.loads(body or b"null")
        call.arg = arg
        if route in UPLOAD_ROUTES and (arg or {}).get("content_hash") not in {
            None,
            content_hash(body),
        }:
            raise route_error("content_hash_mismatch", {".tag": "content_hash_mismatch"})
        return _Reply(200, handler(arg, body))

    def _authorise(self, route: str, headers: Any) -> str:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise _Reply(
                400, 'Error in call to API function: Must provide HTTP header "Authorization"'
            )
        token = str(auth).removeprefix("Bearer ")
        state = self.tokens.get(token)
        if state == "expired":
            raise _Reply(
                401,
                {
                    "error_summary": "expired_access_token/..",
                    "error": {".tag": "expired_access_token"},
                },
            )
        if state != "valid":
            raise _Reply(
                401,
                {
                    "error_summary": "invalid_access_token/..",
                    "error": {".tag": "invalid_access_token"},
                },
            )
        scope = ROUTE_SCOPES[route]
        if scope not in self.scopes:
            raise _Reply(
                401,
                {
                    "error_summary": "missing_scope/..",
                    "error": {".tag": "missing_scope", "required_scope": scope},
                },
            )
        return token

    def _token(self, body: bytes) -> _Reply:
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("grant_type") != "refresh_token":
            return _Reply(400, {"error": "unsupported_grant_type"})
        if (
            form.get("client_id") != APP_KEY
            or form.get("client_secret", self.app_secret) != self.app_secret
        ):
            return _Reply(
                400, {"error": "invalid_client", "error_description": "Invalid client_id or secret"}
            )
        if form.get("refresh_token") not in self.refresh_tokens:
            return _Reply(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "refresh token is invalid or revoked",
                },
            )
        token = self.issue_access_token()
        return _Reply(
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

        def failed(reason: dict[str, Any], summary: str) -> _Reply:
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
        def failed(error: dict[str, Any], summary: str) -> _Reply:
            return route_error(summary, error)

        session = self._session(arg["cursor"], failed)
        session.data += body
        session.closed = bool(arg.get("close"))

    def _r_files_upload_session_finish(self, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
        def lookup_failed(error: dict[str, Any], summary: str) -> _Reply:
            return route_error(
                f"lookup_failed/{summary}", {".tag": "lookup_failed", "lookup_failed": error}
            )

        def path_failed(error: dict[str, Any], summary: str) -> _Reply:
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


# -- HTTP -----------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeDropbox) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        conn.settimeout(30)
        if self.tls is not None:
            # The handshake happens in the request's thread, not in the accepting one.
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that hang up early (timeout and drop faults) are expected here."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault, reply = self.server.fake.handle(self.path, self.headers, body)
        if fault is not None and fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if isinstance(reply.body, str):
            payload, content_type = reply.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(reply.body).encode(), "application/json"
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Dropbox-Request-Id", secrets.token_hex(8))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the calls are in ``fake.calls``."""
