"""A private ``redis-server`` in a folder of its own, for the demo and the tests.

It runs as the production one should (AOF on, ``appendfsync everysec``, ``noeviction``) on
a free loopback port, so tests can ``kill -9`` it and restart it from its AOF.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from agentlink.errors import ConfigurationError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary(*, install: bool = False) -> str:
    """The path of ``redis-server``; installs it with apt-get when allowed and possible."""
    found = shutil.which("redis-server")
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=True, env=env)
        found = shutil.which("redis-server")
        if found:
            return found
    raise ConfigurationError(
        "redis-server is not installed: install it (Debian/Ubuntu: sudo apt-get install "
        "redis-server; macOS: brew install redis) or set REDIS_URL to a Redis >= 7.0"
    )


class RedisServer:
    """One ``redis-server`` process on a free port, with its data in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None, *, install: bool = False) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.binary = redis_server_binary(install=install)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start the server (loading its AOF if there is one) and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.directory / "redis.log"),
            "--daemonize",
            "no",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_tail = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise ConfigurationError(f"redis-server exited at start:\n{log_tail}")
            if self.ping():
                return
            time.sleep(0.05)
        raise ConfigurationError(
            f"redis-server did not answer on port {self.port} within {timeout_s} s"
        )

    def ping(self) -> bool:
        """True once the server answers PING (and has finished loading its data)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """``kill -9`` the server: no shutdown save, only what the AOF already holds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Shut the server down cleanly."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
