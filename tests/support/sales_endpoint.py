"""A local HTTP sales endpoint, for the HTTP data source."""

from __future__ import annotations

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
    """Answers what the test put in ``reply``; remembers the requests."""

    reply: ClassVar[tuple[int, bytes]] = (200, b"[]")
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    hold: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        type(self).seen.append((self.path, dict(self.headers)))
        if self.path.startswith("/slow"):
            type(self).hold.wait(30)
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
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Endpoint.hold.set()
    server.shutdown()
    server.server_close()
