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

import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.fake_dropbox_routes import (
    APP_KEY,
    APP_SECRET,
    DropboxRoutes,
    Reply,
    Session,
    StoredFile,
    content_hash,
    route_error,
)
from tests.support.tls import Certificates

__all__ = ["APP_KEY", "APP_SECRET", "Call", "FakeDropbox", "Fault", "StoredFile", "point_sdk_at"]

SCOPES = frozenset({"account_info.read", "files.content.write", "sharing.read", "sharing.write"})
UPLOAD_ROUTES = frozenset(
    {
        "files/upload",
        "files/upload_session/start",
        "files/upload_session/append_v2",
        "files/upload_session/finish",
    }
)


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


# -- the fake -------------------------------------------------------------------------------------


class FakeDropbox(DropboxRoutes):
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

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[Fault | None, Reply]:
        """Answer one POST; returns the fault that applied (if any) and the reply."""
        route = path.removeprefix("/2/").strip("/") if path.startswith("/2/") else path.strip("/")
        with self._lock:
            call = Call(route=route, arg=None, token=None, body=body)
            self.calls.append(call)
            fault = self._take_fault(route)
            if fault is not None:
                reply = Reply(fault.status, fault.body, **fault.headers)
            else:
                try:
                    reply = self._route(route, headers, body, call)
                except Reply as answer:
                    reply = answer
            call.status = reply.status
            return fault, reply

    def _take_fault(self, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.route in {route, "*"} and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _route(self, route: str, headers: Any, body: bytes, call: Call) -> Reply:
        if route == "oauth2/token":
            return self._token(body)
        handler = getattr(self, "_r_" + route.replace("/", "_"), None)
        if handler is None:
            return Reply(400, f'Unknown API function: "{route}"')
        call.token = self._authorise(route, headers)
        if route in UPLOAD_ROUTES:
            if headers.get("Content-Type") != "application/octet-stream":
                return Reply(
                    400, 'Bad HTTP "Content-Type" header: expected application/octet-stream'
                )
            raw = headers.get("Dropbox-API-Arg", "")
            if not raw.isascii():
                return Reply(400, 'HTTP header "Dropbox-API-Arg": must be ASCII-only JSON')
            arg = json.loads(raw or "null")
        else:
            if headers.get("Content-Type") != "application/json":
                return Reply(400, 'Bad HTTP "Content-Type" header: expected application/json')
            arg = json.loads(body or b"null")
        call.arg = arg
        if route in UPLOAD_ROUTES and (arg or {}).get("content_hash") not in {
            None,
            content_hash(body),
        }:
            raise route_error("content_hash_mismatch", {".tag": "content_hash_mismatch"})
        return Reply(200, handler(arg, body))


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
