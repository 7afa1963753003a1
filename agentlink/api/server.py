"""Serving the API: uvicorn on uvloop and httptools, with a deadline for request headers.

uvicorn closes idle keep-alive connections, but a connection that trickles header lines
(slowloris) is never timed out: its keep-alive timer stops at the first byte. Each request
here must deliver its complete headers within ``AGENTLINK_HEADER_TIMEOUT_S`` of the
connection opening or of the previous response; otherwise the connection gets a 408 and is
closed. (The body has a deadline of its own, ``AGENTLINK_BODY_TIMEOUT_S``, in the routes.)

A burst of thousands of simultaneous connections is queued by the kernel's listen backlog
and the process's file descriptors: both are raised at start.
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agentlink.observe.logging import configure_logging
from agentlink.observe.metrics import MULTIPROCESS_DIR_VARIABLE
from agentlink.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar

LINGER_S = 2.0
"""After a 408, how long a connection stays open (reading and dropping) before it closes."""
LISTEN_BACKLOG = 8192
"""Connections the kernel holds before the API accepts them (capped by net.core.somaxconn)."""


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose headers arrive too slowly."""

    header_timeout_s: float | None = None
    """Set from the settings when the server starts (None: read them on first use)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._lingering = False

    @classmethod
    def _timeout_s(cls) -> float:
        if cls.header_timeout_s is None:
            # A worker process started by uvicorn's supervisor reads the same environment.
            cls.header_timeout_s = Settings.from_env().header_timeout_s
        return cls.header_timeout_s

    def _arm(self) -> None:
        self._disarm()
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(self._timeout_s(), self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if not self._header_bytes:
            self.transport.close()
            return
        body = b"request headers did not arrive in time"
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        # Close our side, but keep reading (and dropping) what the client still sends for a
        # moment: closing with unread data would reset the connection, and the reset can
        # destroy the 408 before the client reads it.
        self._lingering = True
        self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self._header_deadline is not None:
            self._header_bytes += len(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one: each client connection is a file
    descriptor, and 1,024 (a common default) is less than one burst. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def worker_app() -> Litestar:
    """The app of one of several API processes (uvicorn's ``factory``): each process is
    started afresh, so it sets up its own logging from the same environment."""
    from agentlink.api import create_app

    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level, secrets=settings.secrets)
    return create_app(settings)


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the API until SIGINT/SIGTERM: ``settings.api_workers`` processes on one socket."""
    raise_open_files_limit()
    HeaderDeadlineProtocol.header_timeout_s = settings.header_timeout_s
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": HeaderDeadlineProtocol,
        "log_config": None,
        "access_log": False,  # uvicorn.access is at WARNING: skip its per-request call too
        # X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS (uvicorn's variable,
        # default 127.0.0.1): the proxy's address, never "*".
        "proxy_headers": True,
        "timeout_keep_alive": 5,  # idle keep-alive connections hold nothing for long
        "backlog": LISTEN_BACKLOG,
    }
    if settings.api_workers > 1:
        # The workers count into files of one fresh folder, summed at each scrape; it must
        # be in the environment before they import prometheus-client.
        with tempfile.TemporaryDirectory(prefix="agentlink-api-metrics-") as directory:
            os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
            try:
                uvicorn.run(
                    "agentlink.api.server:worker_app",
                    factory=True,
                    workers=settings.api_workers,
                    **options,
                )
            finally:
                del os.environ[MULTIPROCESS_DIR_VARIABLE]
    else:
        from agentlink.api import create_app

        uvicorn.run(create_app(settings), **options)
