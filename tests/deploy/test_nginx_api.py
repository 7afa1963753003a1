"""ops/nginx in front of the real API (``python -m agentlink api``, as compose configures
it): requests, request ids, client addresses and rate limits through nginx, TLS on.
How nginx runs outside its container: tests/deploy/test_nginx.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from agentlink.admin.devredis import RedisServer
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes, wait_for
from tests.support.nginx import (
    CLIENT_ADDRESS,
    METRICS_PATHS,
    NGINX_ADDRESS,
    NGINX_REQUEST_ID,
    SPOOFED,
    TLS_DOMAIN,
    Site,
    access_log,
    client,
    compose_services,
    nginx_fixed_address,
    serving,
    write_site,
)
from tests.support.tls import make_certificates

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
    extra = {}
    forwarded = compose_services()["api"]["environment"].get("FORWARDED_ALLOW_IPS")
    if forwarded:
        # nginx's fixed compose address is NGINX_ADDRESS here (proxy_bind); any other value
        # (a wildcard, another address) reaches the API as written.
        fixed = nginx_fixed_address() if "networks" in compose_services()["nginx"] else None
        extra["FORWARDED_ALLOW_IPS"] = NGINX_ADDRESS if forwarded == fixed else str(forwarded)
    processes = Processes(directory)
    client_redis = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        api = processes.api(settings, **extra)
        tls = make_certificates(directory / "tls")
        upstream = api.removeprefix("http://")
        site = write_site(directory / "nginx", upstream, tls=tls, bind=NGINX_ADDRESS)
        with serving(site):
            yield Stack(api, site, keys, client_redis, directory / "api.log")
    finally:
        for key in client_redis.scan_iter(f"{keys.prefix}:*"):
            client_redis.delete(key)
        client_redis.close()
        processes.stop_all()


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
        assert NGINX_REQUEST_ID.match(request_id), request_id
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
            assert NGINX_REQUEST_ID.match(answer.headers["x-request-id"])
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
