"""A local HTTP sales endpoint, for the HTTP data source."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest


def record(**changes: Any) -> dict[str, Any]:
    sale = {
        "sold_date": "2026-03-01", "address": "1 High Street", "suburb": "St Kilda",
        "state": "VIC", "postcode": "3182", "price": 900000, "property_type": "unit",
        "bedrooms": 2, "days_on_market": 21, "agent": "Ann Lee", "agency": "Bluegum",
        "listing_id": "ignored",
    }  # fmt: skip
    return sale | changes


class Endpoint(BaseHTTPRequestHandler):
    """Answers what the test put in ``reply``; remembers the requests. ``/moved/...``
    redirects to ``moved_to`` followed by the rest of the path."""

    reply: ClassVar[tuple[int, bytes]] = (200, b"[]")
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    hold: ClassVar[threading.Event] = threading.Event()
    moved_to: ClassVar[str] = ""

    def do_GET(self) -> None:
        type(self).seen.append((self.path, dict(self.headers)))
        if self.path.startswith("/slow"):
            type(self).hold.wait(30)
        if self.path.startswith("/moved/"):
            self.send_response(302)
            self.send_header("Location", type(self).moved_to + self.path.removeprefix("/moved"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, body = type(self).reply
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A local HTTP server; yields its base URL."""
    Endpoint.reply, Endpoint.seen, Endpoint.hold = (200, b"[]"), [], threading.Event()
    Endpoint.moved_to = ""
    with _serving() as base:
        yield base
    Endpoint.hold.set()


@pytest.fixture
def other_endpoint(endpoint: str) -> Iterator[str]:
    """A second server like ``endpoint`` (sharing its replies and record) on another port:
    another origin."""
    with _serving() as base:
        yield base


@contextlib.contextmanager
def _serving() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        Endpoint.hold.set()
        server.shutdown()
        server.server_close()
