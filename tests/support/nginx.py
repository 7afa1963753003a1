"""Running ops/nginx with a real nginx outside its container: the configuration rewritten
for loopback addresses and a temporary folder, started and stopped, and clients that
connect from a chosen loopback address (see tests/deploy/test_nginx.py for why)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agentlink.admin.devredis import free_port
from tests.conftest import skip_without, wait_for
from tests.support.compose import load_compose
from tests.support.tls import Certificates

ROOT = Path(__file__).resolve().parents[2]
NGINX_DIR = ROOT / "ops/nginx"
MAIN_CONF = NGINX_DIR / "nginx.conf"
PROXY_CONF = NGINX_DIR / "agentlink-proxy.conf"
COMPOSE_FILE = ROOT / "docker-compose.yml"

CLIENT_ADDRESS = "127.0.0.2"
NGINX_ADDRESS = "127.0.0.3"
SPOOFED = "203.0.113.9"
BEHIND_CDN = "198.51.100.7"  # a client as a CDN at CLIENT_ADDRESS reports it
NOT_THE_CDN = "127.0.0.4"
TLS_DOMAIN = "agentlink.test"
# The operator guide's command that turns the TLS block of nginx.conf on (run in the checkout).
ENABLE_TLS = (
    r"""sed -i -e "s/reports\.example\.com/$DOMAIN/g" """
    r"""-e '/# BEGIN TLS/,/# END TLS/{/# \(BEGIN\|END\) TLS/!s/^\( *\)#/\1/}' """
    "ops/nginx/nginx.conf"
)
OPERATOR_GUIDE = ROOT / "ops" / "README.md"
METRICS_PATHS = ("/metrics", "/metrics/", "//metrics", "/%6Detrics", "/metrics?x=1")
NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def nginx_binary() -> str:
    """Debian's nginx (`make test` installs it as root); the tests skip only without it."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        skip_without("nginx", "nginx")
    return found


def replace_once(text: str, old: str, new: str, where: str, times: int = 1) -> str:
    """``text`` with ``old`` replaced, failing unless ``old`` occurs exactly ``times``."""
    count = text.count(old)
    assert count == times, f"{where}: expected {old!r} {times} times, found it {count} times"
    return text.replace(old, new)


def enable_tls(text: str, directory: Path) -> str:
    """nginx.conf after the operator guide's command that turns TLS on for ``TLS_DOMAIN``."""
    checkout = directory / "checkout"
    (checkout / "ops/nginx").mkdir(parents=True)
    conf = checkout / "ops/nginx/nginx.conf"
    conf.write_text(text)
    subprocess.run(
        ["bash", "-c", ENABLE_TLS],
        cwd=checkout,
        env={**os.environ, "DOMAIN": TLS_DOMAIN},
        check=True,
        timeout=10,
    )
    enabled = conf.read_text()
    assert re.search(r"(?m)^ +listen 443 ssl;$", enabled), "the TLS server is still commented"
    assert "example.com" not in enabled
    return enabled


@dataclass
class Site:
    """A rewritten copy of ops/nginx in ``directory``, and where it listens."""

    directory: Path
    http_port: int
    https_port: int | None = None
    ca: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def log(self) -> Path:
        return self.directory / "nginx.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


def enable_cdn(proxy: str, cdn_range: str) -> str:
    """agentlink-proxy.conf with its CDN block uncommented and ``cdn_range`` as the CDN's."""
    begin, end = proxy.index("# BEGIN CDN\n"), proxy.index("# END CDN\n")
    block = re.sub(r"(?m)^# ", "", proxy[begin + len("# BEGIN CDN\n") : end])
    block = replace_once(block, "203.0.113.0/24", cdn_range, "the CDN block")
    return proxy[:begin] + block + proxy[end:]


def write_site(
    directory: Path,
    upstream: str,
    *,
    tls: Certificates | None = None,
    bind: str | None = None,
    cdn: str | None = None,
) -> Site:
    """Copy ops/nginx into ``directory``, pointed at ``upstream`` (``host:port``); with
    ``tls``, after the operator guide's command that turns TLS on, with ``tls`` as the certificate;
    with ``cdn``, the CDN block on for that address range."""
    directory.mkdir(parents=True, exist_ok=True)
    site = Site(directory, http_port=free_port())
    main = MAIN_CONF.read_text()
    if tls is not None:
        site.https_port = free_port()
        site.ca = tls.ca
        main = enable_tls(main, directory)
        main = replace_once(
            main, "listen 443 ssl;", f"listen 127.0.0.1:{site.https_port} ssl;", "TLS block"
        )
        main = replace_once(main, "listen 80;", f"listen 127.0.0.1:{site.http_port};", "TLS")
        live = f"/etc/letsencrypt/live/{TLS_DOMAIN}"
        main = replace_once(main, f"{live}/fullchain.pem", str(tls.cert), "TLS block")
        main = replace_once(main, f"{live}/privkey.pem", str(tls.key), "TLS block")
    user = "user root;" if os.geteuid() == 0 else ""  # a non-root master ignores `user`
    main = replace_once(main, "user nginx;", user, "nginx.conf")
    main = replace_once(
        main, "pid /var/run/nginx.pid;", f"pid {directory}/nginx.pid;", "nginx.conf"
    )
    main = replace_once(
        main,
        "listen 80 default_server;",
        f"listen 127.0.0.1:{site.http_port} default_server;",
        "nginx.conf",
    )
    # the default server's webroot, and the redirecting server's in the TLS block
    main = replace_once(main, "root /var/www/certbot;", f"root {directory}/certbot;", "conf", 2)
    # Debian's nginx keeps request bodies and buffered responses under /var/lib/nginx.
    scratch = [
        f"    {kind}_temp_path {directory}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    ]
    if bind:
        scratch.append(f"    proxy_bind {bind};")
    main = replace_once(main, "\nhttp {\n", "\nhttp {\n" + "\n".join(scratch) + "\n", "nginx.conf")
    (directory / "certbot").mkdir(exist_ok=True)
    site.conf.write_text(main)
    proxy = replace_once(
        PROXY_CONF.read_text(), "http://api:8000;", f"http://{upstream};", "agentlink-proxy.conf"
    )
    if cdn is not None:
        proxy = enable_cdn(proxy, cdn)
    (directory / PROXY_CONF.name).write_text(proxy)
    return site


def nginx_test(site: Site) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on the site's configuration."""
    return subprocess.run(
        [nginx_binary(), "-t", "-c", str(site.conf), "-p", str(site.directory)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextlib.contextmanager
def serving(site: Site) -> Iterator[Site]:
    """nginx running the site in the foreground, stopped when the block ends."""
    checked = nginx_test(site)
    assert checked.returncode == 0, checked.stderr
    with site.log.open("wb") as log:
        site.process = subprocess.Popen(
            [nginx_binary(), "-c", str(site.conf), "-p", str(site.directory), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def answering() -> bool:
            assert site.process is not None
            assert site.process.poll() is None, f"nginx exited:\n{site.log.read_text()}"
            try:
                return httpx.get(f"{site.http}/nginx-health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answering, 10, "nginx to answer")
        yield site
    finally:
        if site.process.poll() is None:
            site.process.send_signal(signal.SIGTERM)
            try:
                site.process.wait(10)
            except subprocess.TimeoutExpired:
                site.process.kill()
                site.process.wait(10)


def client(
    site: Site | None = None, *, address: str = CLIENT_ADDRESS, **kwargs: Any
) -> httpx.Client:
    """An HTTP client that connects from ``address``, trusting the site's test CA."""
    verify: ssl.SSLContext | bool = True
    if site is not None and site.ca is not None:
        verify = ssl.create_default_context(cafile=site.ca)
    transport = httpx.HTTPTransport(local_address=address, verify=verify)
    return httpx.Client(transport=transport, timeout=10, **kwargs)


def access_log(site: Site) -> list[dict[str, Any]]:
    """The JSON access-log lines nginx wrote so far."""
    lines = site.log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def compose_services() -> dict[str, Any]:
    """The services of docker-compose.yml."""
    services: dict[str, Any] = load_compose()["services"]
    return services


def nginx_fixed_address() -> str:
    """nginx's address on the compose network (what the api's FORWARDED_ALLOW_IPS names)."""
    return str(compose_services()["nginx"]["networks"]["default"]["ipv4_address"])
