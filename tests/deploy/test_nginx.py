"""ops/nginx, run by a real nginx (Debian's) in front of a header echo and of the real API.

nginx.conf is written for the nginx container of docker-compose.yml: it resolves ``api``
through Docker's DNS, listens on 80 (and, once enabled, 443) and runs as ``nginx``. The tests
change only what exists in that container alone: ``api:8000`` becomes a loopback address,
the listen ports free loopback ports, pid/temp/webroot paths a temporary folder, the user
the current one. Each rewrite must match exactly once, so a reworded config fails here
instead of being tested by half.

Addresses: clients connect from 127.0.0.2 and, in front of the API, nginx connects from
127.0.0.3 (``proxy_bind``), so the API sees a proxy that is not itself, as in compose.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from agentlink.admin.devredis import RedisServer, free_port
from agentlink.observe import http as observe_http
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import settings_env, skip_without, wait_for
from tests.support.fake_dropbox import Certificates, make_certificates

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
_NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


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
    services: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def nginx_fixed_address() -> str:
    """nginx's address on the compose network (what the api's FORWARDED_ALLOW_IPS names)."""
    return str(compose_services()["nginx"]["networks"]["default"]["ipv4_address"])


# -- a header echo, standing in for the API ---------------------------------------------------


@dataclass
class Echo:
    """An HTTP server that answers 200 with the request's headers, and records them."""

    port: int = 0
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def echo() -> Iterator[Echo]:
    """A running header echo on a free loopback port."""
    record = Echo()

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            record.seen.append((self.command, self.path, headers))
            body = json.dumps(headers).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def echo_site(tmp_path: Path, echo: Echo) -> Iterator[Site]:
    """nginx in front of the header echo."""
    with serving(write_site(tmp_path / "nginx", echo.address)) as site:
        yield site


# -- the tests ----------------------------------------------------------------------------------


class TestConfiguration:
    def test_nginx_accepts_the_configuration(self, tmp_path: Path) -> None:
        """`nginx -t` passes on ops/nginx as compose runs it (TLS block still commented)."""
        result = nginx_test(write_site(tmp_path, f"127.0.0.1:{free_port()}"))
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr
        assert "[warn]" not in result.stderr, result.stderr

    def test_nginx_accepts_the_documented_tls_block(self, tmp_path: Path) -> None:
        """Uncommented, with a certificate where certbot puts one, the HTTPS server passes."""
        tls = make_certificates(tmp_path / "tls")
        result = nginx_test(write_site(tmp_path / "nginx", "127.0.0.1:9", tls=tls))
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr
        assert "[warn]" not in result.stderr, result.stderr

    def test_a_broken_configuration_fails_the_check(self, tmp_path: Path) -> None:
        """The check is real: a misspelt directive makes `nginx -t` fail."""
        site = write_site(tmp_path, "127.0.0.1:9")
        site.conf.write_text(
            replace_once(site.conf.read_text(), "gzip off;", "gzipp off;", "nginx.conf")
        )
        result = nginx_test(site)
        assert result.returncode != 0
        assert "gzipp" in result.stderr

    def test_the_operator_guide_turns_tls_on_with_the_tested_command(self) -> None:
        """The operator guide's sed line is the one these tests run to enable the TLS block."""
        assert ENABLE_TLS in OPERATOR_GUIDE.read_text()

    def test_request_ids_nginx_keeps_are_the_ones_the_api_keeps(self) -> None:
        """nginx's X-Request-ID pattern is the API's, so both log the same id."""
        match = re.search(r'"~(\^[^"]+)" \$http_x_request_id;', MAIN_CONF.read_text())
        assert match, "nginx.conf maps no X-Request-ID pattern"
        assert match[1] == observe_http._VALID_ID.pattern

    def test_body_limit_is_the_apis(self) -> None:
        """nginx refuses bodies above the API's own default AGENTLINK_MAX_BODY_BYTES."""
        match = re.search(r"(?m)^\s*client_max_body_size (\d+)k;", MAIN_CONF.read_text())
        assert match, "nginx.conf sets no client_max_body_size in KiB"
        assert int(match[1]) * 1024 == Settings().max_body_bytes

    def test_compose_puts_nginx_in_front_of_the_api(self) -> None:
        """nginx publishes 80/443 with these files mounted; the API publishes nothing."""
        services = compose_services()
        nginx = services["nginx"]
        assert str(nginx["image"]).startswith("nginx:1.")
        mounts = {}
        for volume in nginx["volumes"]:
            source, target = volume.split(":")[:2]
            mounts[target] = source
        assert mounts["/etc/nginx/agentlink"] == "./ops/nginx"
        command = nginx["command"]
        assert command[command.index("-c") + 1] == "/etc/nginx/agentlink/nginx.conf"
        # certbot's paths on the host, where the commented TLS block and the webroot look
        assert mounts["/etc/letsencrypt"] == "/etc/letsencrypt"
        assert mounts["/var/www/certbot"] == "/var/www/certbot"
        published = {str(port).rsplit(":", 1)[-1] for port in nginx["ports"]}
        assert published == {"80", "443"}
        assert "/nginx-health" in " ".join(nginx["healthcheck"]["test"])
        assert not services["api"].get("ports"), "the API is reached through nginx only"
        assert services["api"]["environment"].get("FORWARDED_ALLOW_IPS") == nginx_fixed_address(), (
            "uvicorn must trust X-Forwarded-* from nginx's address, and from no other"
        )


class TestHeaders:
    def test_nginx_forwards_the_client_scheme_host_and_request_id(
        self, echo_site: Site, echo: Echo
    ) -> None:
        """The upstream gets the client's address (not a spoofed one), scheme, Host, an id."""
        with client() as http:
            answer = http.post(
                f"{echo_site.http}/api/generate-agents-report",
                json={"suburb": "Manly", "state": "NSW"},
                headers={"X-Forwarded-For": SPOOFED, "Host": "reports.example.com:8080"},
            )
        assert answer.status_code == 200, answer.text
        ((method, path, headers),) = echo.seen
        assert (method, path) == ("POST", "/api/generate-agents-report")
        assert headers["x-forwarded-for"] == CLIENT_ADDRESS
        assert headers["x-forwarded-proto"] == "http"
        assert headers["host"] == "reports.example.com:8080"
        assert _NGINX_REQUEST_ID.match(headers["x-request-id"]), headers["x-request-id"]
        assert answer.headers["x-request-id"] == headers["x-request-id"]
        # nginx logs once the answer is sent, so the line may lag the answer a little
        (line,) = wait_for(
            lambda: [e for e in access_log(echo_site) if e["uri"].startswith("/api/")],
            5,
            "nginx's access-log line",
        )
        assert line["request_id"] == headers["x-request-id"]
        assert (line["remote_addr"], line["status"]) == (CLIENT_ADDRESS, 200)

    def test_behind_a_cdn_the_address_the_cdn_saw_is_forwarded(
        self, tmp_path: Path, echo: Echo
    ) -> None:
        """The CDN block on, the CDN at CLIENT_ADDRESS: the API gets the address the CDN
        appended, not one its client prepended; a caller outside the CDN's range keeps its
        own address whatever it sends."""
        site = write_site(tmp_path / "nginx", echo.address, cdn=CLIENT_ADDRESS)
        with serving(site):
            with client() as via_cdn:
                spoofed_then_real = f"{SPOOFED}, {BEHIND_CDN}"
                answer = via_cdn.get(
                    f"{site.http}/api/x", headers={"X-Forwarded-For": spoofed_then_real}
                )
                assert answer.status_code == 200
            with client(address=NOT_THE_CDN) as direct:
                answer = direct.get(f"{site.http}/api/x", headers={"X-Forwarded-For": BEHIND_CDN})
                assert answer.status_code == 200
        (_, _, from_cdn), (_, _, from_elsewhere) = echo.seen
        assert from_cdn["x-forwarded-for"] == BEHIND_CDN
        assert from_elsewhere["x-forwarded-for"] == NOT_THE_CDN
        assert [e["remote_addr"] for e in access_log(site)][-2:] == [BEHIND_CDN, NOT_THE_CDN]

    def test_the_cdn_block_never_forwards_the_clients_header(self) -> None:
        """The proxy sends $remote_addr, in the CDN set-up too (ops/README.md: "Behind a CDN")."""
        proxy = PROXY_CONF.read_text()
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in proxy
        assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for" not in proxy
        assert "$proxy_add_x_forwarded_for;" not in OPERATOR_GUIDE.read_text()

    def test_a_callers_request_id_is_kept_unless_it_is_unsafe(
        self, echo_site: Site, echo: Echo
    ) -> None:
        """A plausible X-Request-ID passes through; one that could forge log text does not."""
        with client() as http:
            kept = http.get(f"{echo_site.http}/health", headers={"X-Request-ID": "make-42.a"})
            unsafe = http.get(
                f"{echo_site.http}/health", headers={"X-Request-ID": 'x", "status": 200'}
            )
        assert echo.seen[0][2]["x-request-id"] == "make-42.a"
        assert kept.headers["x-request-id"] == "make-42.a"
        replaced = echo.seen[1][2]["x-request-id"]
        assert _NGINX_REQUEST_ID.match(replaced), replaced
        assert unsafe.headers["x-request-id"] == replaced

    def test_nginx_health_is_for_the_container_only(self, echo_site: Site, echo: Echo) -> None:
        """/nginx-health (the compose healthcheck) answers loopback only, without the API."""
        local = httpx.get(f"{echo_site.http}/nginx-health", timeout=5)
        with client() as http:
            remote = http.get(f"{echo_site.http}/nginx-health")
        assert local.status_code == 200
        assert local.text.startswith("Active connections:")
        assert remote.status_code == 403
        assert echo.seen == []

    def test_metrics_never_reach_the_upstream(self, echo_site: Site, echo: Echo) -> None:
        """/metrics, however spelt, is answered 404 by nginx itself."""
        with client() as http:
            answers = [http.get(f"{echo_site.http}{path}") for path in METRICS_PATHS]
        assert [a.status_code for a in answers] == [404] * len(METRICS_PATHS)
        assert all(a.json()["title"] == "Not found" for a in answers)
        assert echo.seen == []

    def test_a_large_body_is_refused_before_the_upstream(self, echo_site: Site, echo: Echo) -> None:
        """A body above client_max_body_size gets 413 in the API's JSON shape."""
        body = b'{"suburb": "' + b"x" * Settings().max_body_bytes + b'"}'
        with client() as http:
            answer = http.post(
                f"{echo_site.http}/api/generate-agents-report",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        assert answer.status_code == 413
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["status"] == 413
        assert echo.seen == []

    def test_an_unreachable_api_gives_a_json_503(self, tmp_path: Path) -> None:
        """With nothing listening upstream, callers get 503 + Retry-After, as from the API."""
        with serving(write_site(tmp_path, f"127.0.0.1:{free_port()}")) as site, client() as http:
            answer = http.get(f"{site.http}/api/job-status/x")
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["title"] == "Service unavailable"
        assert _NGINX_REQUEST_ID.match(answer.headers["x-request-id"])


# -- nginx in front of `python -m agentlink api` ------------------------------------------------


@dataclass
class Stack:
    """The API process and nginx (HTTP and HTTPS) in front of it."""

    api: str
    site: Site
    keys: Keys
    redis: redis.Redis
    log: Path

    def api_log(self) -> list[dict[str, Any]]:
        """The API's JSON log lines so far."""
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`python -m agentlink api` as compose configures it, behind nginx with TLS on."""
    directory = tmp_path_factory.mktemp("nginx-stack")
    keys = Keys("nginxtest")
    settings = replace(
        Settings(),
        redis_url=redis_server.url,
        key_prefix=keys.prefix,
        output_dir=directory / "reports",
        consumer_name="nginxtest",
    )
    env = settings_env(settings)
    env.pop("FORWARDED_ALLOW_IPS", None)
    forwarded = compose_services()["api"]["environment"].get("FORWARDED_ALLOW_IPS")
    if forwarded:
        # nginx's fixed compose address is NGINX_ADDRESS here (proxy_bind); any other value
        # (a wildcard, another address) reaches the API as written.
        fixed = nginx_fixed_address() if "networks" in compose_services()["nginx"] else None
        env["FORWARDED_ALLOW_IPS"] = NGINX_ADDRESS if forwarded == fixed else str(forwarded)
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    with (directory / "api.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agentlink", "api", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    client_redis = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:

        def healthy() -> bool:
            assert process.poll() is None, (directory / "api.log").read_text()
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, 30, "the API to answer /health")
        tls = make_certificates(directory / "tls")
        site = write_site(directory / "nginx", f"127.0.0.1:{port}", tls=tls, bind=NGINX_ADDRESS)
        with serving(site):
            yield Stack(api, site, keys, client_redis, directory / "api.log")
    finally:
        for key in client_redis.scan_iter(f"{keys.prefix}:*"):
            client_redis.delete(key)
        client_redis.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class TestInFrontOfTheApi:
    def test_a_report_request_is_accepted_through_nginx(self, stack: Stack) -> None:
        """POST → 202; the status_url points back through nginx and answers there."""
        with client() as http:
            answer = http.post(
                f"{stack.site.http}/api/generate-agents-report",
                json={"suburb": "Manly", "state": "NSW"},
            )
            assert answer.status_code == 202, answer.text
            accepted = answer.json()
            assert accepted["status_url"].startswith(f"{stack.site.http}/api/job-status/")
            assert answer.headers["location"] == accepted["status_url"]
            status = http.get(accepted["status_url"])
        assert status.status_code == 200, status.text
        assert status.json()["job_id"] == accepted["job_id"]
        # one request id in nginx's access log, the answer and the API's own log line
        request_id = answer.headers["x-request-id"]
        assert _NGINX_REQUEST_ID.match(request_id), request_id
        logged = wait_for(
            lambda: [e for e in access_log(stack.site) if e["request_id"] == request_id],
            5,
            "nginx's access-log line",
        )
        assert [(e["method"], e["status"]) for e in logged] == [("POST", 202)]
        wait_for(
            lambda: any(
                line.get("event") == "report.accepted" and line.get("request_id") == request_id
                for line in stack.api_log()
            ),
            5,
            "the API to log report.accepted with nginx's request id",
        )

    def test_the_api_sees_the_clients_address(self, stack: Stack) -> None:
        """X-Forwarded-For reaches the app: it rate-limits the client, not nginx or a spoof."""
        with client() as http:
            answer = http.post(
                f"{stack.site.http}/api/generate-agency-report",
                json={"suburb": "Manly", "state": "NSW"},
                headers={"X-Forwarded-For": SPOOFED},
            )
        assert answer.status_code == 202, answer.text
        buckets = set(stack.redis.scan_iter(stack.keys.rate("*")))
        assert buckets == {stack.keys.rate(f"ip-{CLIENT_ADDRESS}")}

    def test_a_direct_caller_cannot_choose_its_address(self, stack: Stack) -> None:
        """X-Forwarded-For from anything but nginx's address is ignored: a container that
        reaches the API directly is rate-limited by its own address."""
        with client() as http:
            answer = http.post(
                f"{stack.api}/api/generate-agency-report",
                json={"suburb": "Manly", "state": "NSW"},
                headers={"X-Forwarded-For": SPOOFED},
            )
        assert answer.status_code == 202, answer.text
        buckets = set(stack.redis.scan_iter(stack.keys.rate("*")))
        assert stack.keys.rate(f"ip-{SPOOFED}") not in buckets
        assert stack.keys.rate(f"ip-{CLIENT_ADDRESS}") in buckets

    def test_https_through_the_tls_block(self, stack: Stack) -> None:
        """Over the TLS server the API builds https:// links and HSTS is sent."""
        with client(stack.site) as http:
            answer = http.post(
                f"{stack.site.https}/api/generate-agents-report",
                json={"suburb": "Manly", "state": "NSW"},
            )
            assert answer.status_code == 202, answer.text
            status_url = answer.json()["status_url"]
            assert status_url.startswith(f"{stack.site.https}/api/job-status/"), status_url
            assert answer.headers["strict-transport-security"].startswith("max-age=")
            assert _NGINX_REQUEST_ID.match(answer.headers["x-request-id"])
            assert http.get(status_url).status_code == 200

    def test_port_80_of_the_domain_redirects_but_serves_certbots_challenges(
        self, stack: Stack
    ) -> None:
        """With TLS on, http://<domain>/… answers 308 to https; ACME challenges still load."""
        challenge = stack.site.directory / "certbot/.well-known/acme-challenge/token-1"
        challenge.parent.mkdir(parents=True, exist_ok=True)
        challenge.write_text("token-1.key")
        domain = {"Host": TLS_DOMAIN}
        with client() as http:
            redirected = http.post(
                f"{stack.site.http}/api/generate-agents-report?x=1", json={}, headers=domain
            )
            token = http.get(
                f"{stack.site.http}/.well-known/acme-challenge/token-1", headers=domain
            )
            by_address = http.get(f"{stack.site.http}/health")
        assert redirected.status_code == 308
        assert redirected.headers["location"] == (
            f"https://{TLS_DOMAIN}/api/generate-agents-report?x=1"
        )
        assert (token.status_code, token.text) == (200, "token-1.key")
        assert by_address.status_code == 200, "the default server still proxies plain HTTP"

    def test_metrics_are_served_to_prometheus_but_not_through_nginx(self, stack: Stack) -> None:
        """api:8000/metrics answers; every spelling of /metrics through nginx is 404."""
        direct = httpx.get(f"{stack.api}/metrics", timeout=5)
        assert direct.status_code == 200
        assert "agentlink_" in direct.text
        with client(stack.site) as http:
            for base in (stack.site.http, stack.site.https):
                for path in METRICS_PATHS:
                    answer = http.get(f"{base}{path}")
                    assert answer.status_code == 404, (base, path)
                    assert "agentlink_" not in answer.text

    def test_health_and_api_errors_pass_through(self, stack: Stack) -> None:
        """/health answers 200 through nginx; the API's own 404 body is not replaced."""
        with client() as http:
            health = http.get(f"{stack.site.http}/health")
            missing = http.get(f"{stack.site.http}/api/job-status/does-not-exist")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert missing.status_code == 404
        assert "does-not-exist" in missing.json()["detail"]
