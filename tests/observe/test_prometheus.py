"""A real Prometheus against a real API and consumer, and the ops/ files it loads.

Prometheus (Debian package ``prometheus``; ``make test`` installs it as root) runs on loopback with
a generated configuration: 1 s scrapes of an ``agentlink api`` process and of a consumer's
metrics port, and the rules of ops/prometheus/alerts.yml. Jobs go through over HTTP, then
Prometheus's HTTP API must show them. ``promtool`` checks ops/prometheus/ (config, rules,
rule unit tests), and every PromQL expression of the Grafana dashboard must be accepted by
the running Prometheus.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agentlink.admin.devredis import RedisServer, free_port
from tests.conftest import ROOT, Processes, settings_env, skip_without, wait_for
from tests.support.settings import quick_settings

PROMETHEUS_DIR = ROOT / "ops/prometheus"
GRAFANA_DIR = ROOT / "ops/grafana"
DASHBOARD = GRAFANA_DIR / "dashboards/agentlink.json"
JOBS = [("agents", "Manly", "NSW"), ("agency", "Manly", "NSW"), ("agents", "Mosman", "NSW")]


def binary(name: str) -> str:
    """The path of a Prometheus binary, or a skip saying how to get it."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        skip_without("prometheus", name)  # or the release binaries on the PATH
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in ops/prometheus (rule files are named relative to it)."""
    return subprocess.run(
        [binary("promtool"), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the Grafana dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


class TestOpsFiles:
    def test_promtool_accepts_the_scrape_config(self) -> None:
        """promtool check config ops/prometheus/prometheus.yml (and the rules it names)."""
        result = promtool("check", "config", "prometheus.yml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_promtool_accepts_the_alert_rules(self) -> None:
        """promtool check rules ops/prometheus/alerts.yml."""
        result = promtool("check", "rules", "alerts.yml")
        assert result.returncode == 0, result.stdout + result.stderr

    def test_alerts_fire_as_their_unit_tests_say(self) -> None:
        """promtool test rules ops/prometheus/alerts_test.yml: each alert fires when it should."""
        result = promtool("test", "rules", "alerts_test.yml")
        assert result.returncode == 0, result.stdout + result.stderr

    def test_every_alert_has_a_unit_test(self) -> None:
        """Each alert of alerts.yml is exercised by alerts_test.yml (firing, with its text)."""
        rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
        tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
        fired = {
            check["alertname"]
            for case in tests["tests"]
            for check in case["alert_rule_test"]
            if check.get("exp_alerts")
        }
        alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
        assert alerts - fired == set(), "alerts no unit test sees firing"

    def test_grafana_is_provisioned_with_the_dashboard_and_its_datasource(self) -> None:
        """The dashboard's panels use the provisioned datasource; the provider reads the
        folder compose mounts the dashboards into."""
        datasources = yaml.safe_load(
            (GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text()
        )["datasources"]
        uids = {source["uid"] for source in datasources}
        assert {source["url"] for source in datasources} == {"http://prometheus:9090"}
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel["targets"], panel["title"]
        provider = yaml.safe_load(
            (GRAFANA_DIR / "provisioning/dashboards/agentlink.yml").read_text()
        )["providers"][0]
        grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
        mounts = dict(reversed(v.split(":")[:2]) for v in grafana["volumes"] if v.startswith("./"))
        assert mounts[provider["options"]["path"]] == "./ops/grafana/dashboards"
        assert mounts["/etc/grafana/provisioning"] == "./ops/grafana/provisioning"
        titles = {panel["title"] for panel in dashboard["panels"]}
        for wanted in ("Workers needed vs live", "Queue wait p50 / p95", "Backlog", "Dead letters"):
            assert wanted in titles


@dataclass
class Stack:
    """The running API, consumer and Prometheus."""

    api: str
    prometheus: str

    def query(self, expr: str) -> dict[str, Any]:
        """Prometheus's answer to an instant query (the whole JSON body)."""
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=5)
        body: dict[str, Any] = response.json()
        return body

    def scalar(self, expr: str) -> float | None:
        """The single value an instant query returns (None while it returns nothing)."""
        result = self.query(expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, ``agentlink api``, one consumer with a metrics port, and Prometheus scraping
    both every second with the project's alert rules; the three jobs of JOBS completed."""
    prometheus = binary("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    server = RedisServer(tmp / "redis")
    server.start()
    settings = quick_settings(server.url, tmp, "prom")
    api_port, metrics_port, prometheus_port = free_port(), free_port(), free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(PROMETHEUS_DIR / "alerts.yml")],
                "scrape_configs": [
                    {"job_name": "api", "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}]},
                    {
                        "job_name": "worker",
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                    },
                ],
            }
        )
    )
    processes = Processes(tmp)
    try:
        env = settings_env(settings)
        processes.start(["-m", "agentlink", "api", "--port", str(api_port)], env, "api")
        processes.consumer(settings, AGENTLINK_METRICS_PORT=str(metrics_port))
        with (tmp / "prometheus.log").open("ab") as log:
            started = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=log,
            )
        processes.started.append(started)  # type: ignore[arg-type]
        found = Stack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prometheus_port}")

        def answers(url: str) -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(lambda: answers(f"{found.prometheus}/-/ready"), 30, "Prometheus to be ready")
        wait_for(lambda: answers(f"{found.api}/health"), 30, "the API")
        job_ids = []
        for kind, suburb, state in JOBS:
            response = httpx.post(
                f"{found.api}/api/generate-{kind}-report",
                json={"suburb": suburb, "state": state},
                timeout=10,
            )
            assert response.status_code == 202, response.text
            job_ids.append(response.json()["job_id"])
        for job_id in job_ids:
            wait_for(
                lambda j=job_id: (
                    httpx.get(f"{found.api}/api/job-status/{j}", timeout=5).json()["status"]
                    == "completed"
                ),
                60,
                f"job {job_id}",
            )
        yield found
    finally:
        processes.stop_all()
        server.stop()


class TestRealPrometheus:
    def test_prometheus_counts_the_completed_jobs(self, stack: Stack) -> None:
        """agentlink_jobs_total, scraped from the consumer, shows the three jobs."""
        total = 'sum(agentlink_jobs_total{job="worker", outcome="completed"})'
        wait_for(lambda: stack.scalar(total) == len(JOBS), 30, "Prometheus to see 3 jobs")
        by_kind = stack.query('sum by (kind) (agentlink_jobs_total{outcome="completed"})')
        counts = {r["metric"]["kind"]: float(r["value"][1]) for r in by_kind["data"]["result"]}
        assert counts == {"agents": 2, "agency": 1}

    def test_both_targets_are_up_and_parse_cleanly(self, stack: Stack) -> None:
        """The API and the consumer are scraped without errors."""
        response = httpx.get(f"{stack.prometheus}/api/v1/targets", timeout=5).json()
        targets = {t["labels"]["job"]: t for t in response["data"]["activeTargets"]}
        assert set(targets) == {"api", "worker"}
        for job, target in targets.items():
            wait_for(lambda j=job: stack.scalar(f'up{{job="{j}"}}') == 1, 15, f"{job} to be up")
            assert target["lastError"] == "", (job, target["lastError"])

    def test_stream_gauges_reach_prometheus(self, stack: Stack) -> None:
        """The API's scrape-time gauges: a live idle consumer, an empty queue, Redis up."""
        wait_for(
            lambda: stack.scalar('agentlink_consumers_live{job="api"}') == 1, 15, "live consumer"
        )
        assert stack.scalar('agentlink_redis_up{job="api"}') == 1
        wait_for(lambda: stack.scalar("agentlink_stream_lag") == 0, 15, "an empty queue")
        assert stack.scalar("agentlink_dlq_length") == 0
        accepted = "sum(agentlink_requests_accepted_total)"
        wait_for(lambda: stack.scalar(accepted) == len(JOBS), 15, "accepted requests")

    def test_every_dashboard_expression_is_valid_promql(self, stack: Stack) -> None:
        """Each query of the Grafana dashboard is accepted by Prometheus's query API."""
        expressions = dashboard_expressions()
        assert len(expressions) >= 20
        for expr in expressions:
            answer = stack.query(expr)
            assert answer["status"] == "success", (expr, answer)
        wait_for(
            lambda: stack.query("max(agentlink_workers_needed)")["data"]["result"],
            30,
            "the scaling gauge in Prometheus (after the API's first scrape)",
        )

    def test_alert_rules_evaluate_without_errors(self, stack: Stack) -> None:
        """Prometheus loads alerts.yml and every rule evaluates cleanly on real series."""

        def rules() -> list[dict[str, Any]] | None:
            groups = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=5).json()["data"]
            found = [rule for group in groups["groups"] for rule in group["rules"]]
            evaluated = all(not rule["lastEvaluation"].startswith("0001") for rule in found)
            return found if found and evaluated else None

        found = wait_for(rules, 15, "the rules to be evaluated")
        assert len(found) == len(
            yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"][0]["rules"]
        )
        for rule in found:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
        firing = {rule["name"] for rule in found if rule["state"] == "firing"}
        assert "AgentLinkNoConsumers" not in firing
