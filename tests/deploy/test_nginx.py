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

import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentlink.admin.devredis import free_port
from agentlink.observe import http as observe_http
from agentlink.settings import Settings
from tests.conftest import wait_for
from tests.support.nginx import (
    BEHIND_CDN,
    CLIENT_ADDRESS,
    ENABLE_TLS,
    MAIN_CONF,
    METRICS_PATHS,
    NGINX_REQUEST_ID,
    NOT_THE_CDN,
    OPERATOR_GUIDE,
    PROXY_CONF,
    SPOOFED,
    Site,
    access_log,
    client,
    compose_services,
    nginx_fixed_address,
    nginx_test,
    replace_once,
    serving,
    write_site,
)
from tests.support.tls import make_certificates

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

    def test_the_readme_turns_tls_on_with_the_tested_command(self) -> None:
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
        assert NGINX_REQUEST_ID.match(headers["x-request-id"]), headers["x-request-id"]
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
        assert NGINX_REQUEST_ID.match(replaced), replaced
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
        assert NGINX_REQUEST_ID.match(answer.headers["x-request-id"])
