"""Every panel query of every dashboard runs against a real Prometheus and returns data.

Debian's Prometheus (with the shipped recording and alert rules) scrapes a collector fed by a real
agent, a real snmpd, a probed web site, a P1 fault reported by a person (paged by email to the
on-call and the director, then acknowledged), a P3 one resolved, and a patrol run. The dashboards'
variables are resolved through Prometheus as Grafana would (label values), then every target runs
with them substituted, as an instant or a range query as the panel asks. A query may come back
empty only if it is listed below with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.shipped import DEPLOY, ROOT, dashboards, targets
from tests.notify_peers import Mailbox, smtp_server
from tests.probe_peers import expiring_tls_server
from tests.snmp_peers import start_snmpd
from tests.support import (
    Agent,
    Collector,
    Process,
    cli,
    free_port,
    free_udp_port,
    http_get,
    set_secret,
    wait_until,
    write_yaml,
)

pytestmark = pytest.mark.peers

RATE_INTERVAL = "10s"  # what Grafana makes $__rate_interval of a 1 s scrape interval, with room to spare
RANGE_SECONDS = 30  # the range queries' window, and the step below
STEP = "2s"
# Chosen values of the dashboards' variables; each must be among the values its label_values() query finds.
CHOSEN = {"site": "main-building", "asset": "web-01", "device": "core-sw-1", "checklist": "e2e-patrol",
          "job": "schoolops"}

# (dashboard uid, panel title, refId) → why the query may come back empty here
EXPECTED_EMPTY: dict[tuple[str, str, str], str] = {
    ("schoolops-servers", "Temperatures", "A"): "the agent reports no hardware temperature sensors on a machine "
                                                 "or container without hwmon (this one has none)",
}

CHECKLIST = """\
name: e2e-patrol
title: {{en: Dashboard test patrol}}
sections:
  - id: servers
    title: {{en: Servers}}
    items:
      - id: root-disk
        check: {{en: Root filesystem usage}}
        standard: {{en: at most 1 % (abnormal on purpose)}}
        method: {{kind: metric, metric: filesystem.used_percent, key: "/", max: 1}}
        applies_to: {{names: [web-01]}}
        on_abnormal: {{type: capacity, severity: P4}}
      - id: memory
        check: {{en: Memory usage}}
        standard: {{en: at most 100 %}}
        method: {{kind: metric, metric: memory.used_percent, max: 100}}
        applies_to: {{names: [web-01]}}
        on_abnormal: {{type: capacity, severity: P4}}
  - id: services
    title: {{en: Websites and services}}
    items:
      - id: portal
        check: {{en: The portal answers}}
        standard: HTTP 200
        method: {{kind: http, url: "http://127.0.0.1:{port}/", expect_status: 200}}
        applies_to: {{names: [portal]}}
        on_abnormal: {{type: application, severity: P3}}
"""


class Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<h1>Welcome to the school portal</h1>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Prometheus:
    """Debian's Prometheus with the shipped config's rules, scraping one collector every second."""

    def __init__(self, directory: Path, collector_port: int) -> None:
        directory.mkdir()
        shipped = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        shipped["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        shipped["rule_files"] = [str(DEPLOY / "prometheus" / pattern) for pattern in shipped["rule_files"]]
        (job,) = shipped["scrape_configs"]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{collector_port}"]}]
        config = write_yaml(directory / "prometheus.yml", shipped)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process([shutil.which("prometheus") or "/usr/bin/prometheus", f"--config.file={config}",
                                f"--storage.tsdb.path={directory / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{self.port}"], directory / "prometheus.log")

    def api(self, path: str, **params: str) -> dict[str, Any]:
        status, body = http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        data = json.loads(body) if body else {"status": "error", "error": f"HTTP {status}"}
        return data  # type: ignore[no-any-return]

    def instant(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("query", query=promql)
        return data["data"]["result"] if data.get("status") == "success" else []  # type: ignore[no-any-return]


@pytest.fixture
def web_site() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    (tmp_path / "tls").mkdir()
    server, port = expiring_tls_server(tmp_path / "tls", Site, days=60)
    yield port, tmp_path / "tls" / "tls.pem"
    server.shutdown()
    server.server_close()


@pytest.fixture
def mail() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process for the agent to watch (stopped by its PID)."""
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait(10)


def oncall_file(path: Path, smtp_port: int) -> Path:
    def person(pid: str, roles: list[str]) -> dict[str, Any]:
        return {"id": pid, "name": pid, "language": "en", "roles": roles,
                "contacts": [{"channel": "email", "address": f"{pid}@school.test"}]}

    return write_yaml(path, {
        "timezone": "Asia/Shanghai",
        "channels": [{"kind": "email", "id": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                      "sender": "schoolops@school.test"}],
        "people": [person("li.na", ["on-call"]), person("chen.jie", ["on-call"]), person("liu.director", ["director"])],
        "schedule": {"start": "2026-01-05", "rotation": [{"primary": "li.na", "backup": "chen.jie"}]},
    })


def make_collector(tmp_path: Path, snmp_port: int, web_port: int, tls: tuple[int, Path], smtp_port: int) -> Collector:
    runbooks = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", runbooks, ignore=shutil.ignore_patterns("patrol"))
    (runbooks / "patrol").mkdir()
    (runbooks / "patrol" / "e2e.yaml").write_text(CHECKLIST.format(port=web_port))
    inventory = write_yaml(tmp_path / "inventory.yaml", {"assets": [
        {"name": "web-01", "kind": "server", "site": "main-building", "role": "web", "tier": "important"},
        {"name": "ghost-01", "kind": "server", "site": "north-building", "role": "library", "tier": "normal"},
        {"name": "core-sw-1", "kind": "network", "site": "main-building", "role": "core-switch", "tier": "core",
         "address": "127.0.0.1",
         "snmp": {"version": "2c", "port": snmp_port, "community_secret": "snmp.ro", "interval": "2s",
                  "timeout": "0.5s", "retries": 0}},
        {"name": "portal", "kind": "service", "site": "main-building", "role": "web", "tier": "important", "probes": [
            {"name": "home", "kind": "http", "target": f"http://127.0.0.1:{web_port}/", "body_contains": "Welcome",
             "interval": "1s", "timeout": "2s"},
            {"name": "certificate", "kind": "tls", "target": f"localhost:{tls[0]}", "interval": "1s", "timeout": "2s",
             "ca_file": str(tls[1])}]},
    ]})
    collector = Collector(tmp_path / "collector", extra={
        "inventory_file": str(inventory), "runbooks": {"dir": str(runbooks)}, "patrol": {"tick_interval": "0.5s"},
        "oncall_file": str(oncall_file(tmp_path / "oncall.yaml", smtp_port)),
        "incidents": {"tick_interval": "0.5s", "teaching_roles": []},
        "network": {"trap_host": "127.0.0.1", "trap_port": free_udp_port()},
    })
    set_secret(collector, "snmp.ro", "public-e2e")  # before the start: the poller reads it then
    return collector


def agent_watches(tmp_path: Path, collector: Collector) -> dict[str, Any]:
    backups, log = tmp_path / "backups", tmp_path / "auth.log"
    backups.mkdir()
    (backups / "school-2026-11-24.sql.gz").write_bytes(b"backup")
    log.write_text("")
    return {"probes": {
        "processes": [{"name": "sleeper", "process_name": "sleep"}],
        "ports": [{"port": collector.port, "name": "collector"}],
        "files": [{"name": "nightly-backup", "path": str(backups), "pattern": "*.sql.gz", "max_age": "26h"}],
        "logs": [{"name": "ssh-auth", "path": str(log), "patterns": ["Failed password"]}],
        "commands": [{"name": "always-ok", "argv": [shutil.which("true") or "/bin/true"]}],
    }}


def incident_of(collector: Collector, description: str) -> dict[str, Any] | None:
    rows = json.loads(cli("incidents", "list", "--all", "--json", "--config", str(collector.config_path)).stdout)
    return next((row for row in rows if description in row["title"]), None)


def resolve_variables(prometheus: Prometheus, board: dict[str, Any]) -> dict[str, str]:
    """Each query variable's label_values() through Prometheus, in order, as Grafana resolves them."""
    values: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = substitute(variable["query"], values)
        metric, label = query.removeprefix("label_values(").removesuffix(")").rsplit(",", 1)
        found = prometheus.api(f"label/{label.strip()}/values", **{"match[]": metric.strip()})
        assert found.get("status") == "success", (board["uid"], variable["name"], found)
        assert CHOSEN[variable["name"]] in found["data"], (board["uid"], variable["name"], found["data"])
        values[variable["name"]] = CHOSEN[variable["name"]]
    return values


def substitute(text: str, values: dict[str, str]) -> str:
    for name, value in sorted(values.items(), key=lambda item: -len(item[0])):
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return text


def run_target(prometheus: Prometheus, expr: str, instant: bool, now: float) -> tuple[str | None, list[Any]]:
    """(error, result) of one target, as Grafana would run it."""
    if instant:
        data = prometheus.api("query", query=expr, time=f"{now:.3f}")
    else:
        data = prometheus.api("query_range", query=expr, start=f"{now - RANGE_SECONDS:.3f}", end=f"{now:.3f}",
                              step=STEP)
    if data.get("status") != "success":
        return f"{data.get('errorType')}: {data.get('error')}", []
    return None, data["data"]["result"]  # type: ignore[no-any-return]


def test_every_panel_query_of_every_dashboard_returns_data(
    tmp_path: Path, make_agent: Callable[..., Agent], web_site: int,
    tls_site: tuple[int, Path], mail: tuple[Mailbox, int], sleeper: subprocess.Popen[bytes],
) -> None:
    snmp_port = free_udp_port()
    snmpd = start_snmpd(tmp_path / "snmpd", snmp_port)
    prometheus: Prometheus | None = None
    collector = make_collector(tmp_path, snmp_port, web_site, tls_site, mail[1])
    try:
        collector.start()
        config = ["--config", str(collector.config_path)]
        agent = make_agent(collector, "web-01", extra=agent_watches(tmp_path, collector)).start()
        prometheus = Prometheus(tmp_path / "prometheus", collector.port)
        prometheus.process.start()
        started = time.time()
        wait_until(lambda: prometheus.instant('schoolops_asset_up{asset="web-01"} == 1')  # type: ignore[union-attr]
                   and prometheus.instant('schoolops_device_up{asset="core-sw-1"} == 1')  # type: ignore[union-attr]
                   and prometheus.instant('schoolops_probe_up{asset="portal"} == 1'),  # type: ignore[union-attr]
                   timeout=45, interval=0.5, what="the agent, the switch and the portal in Prometheus")

        # people at work: a P1 reported and acknowledged, a P3 reported and resolved, a log line, a patrol
        (tmp_path / "auth.log").write_text("sshd[1]: Failed password for root from 10.0.0.9\n")
        cli("report-fault", "core switch fan is loud and hot", "--asset", "core-sw-1", "--type", "hardware",
            "--severity", "P1", "--as", "zhang.teacher", *config)
        cli("report-fault", "projector in room 204 shows no signal", "--asset", "web-01", "--severity", "P3",
            "--as", "zhang.teacher", *config)
        major = wait_until(lambda: incident_of(collector, "core switch fan"), timeout=20, what="the P1 incident")
        minor = wait_until(lambda: incident_of(collector, "projector in room 204"), timeout=20, what="the P3 one")
        assert major is not None and minor is not None and major["severity"] == "P1"
        wait_until(lambda: mail[0].to("liu.director@school.test"), timeout=20, what="the director paged")
        cli("incidents", "ack", str(major["id"]), "--as", "li.na", *config)
        cli("incidents", "resolve", str(minor["id"]), "--as", "li.na", *config)
        cli("patrol", "run", "e2e-patrol", "--as", "li.na", *config)

        for promql in ('schoolops_patrol_last_run_timestamp_seconds{checklist="e2e-patrol"} > 0',
                       'increase(schoolops_incident_time_to_acknowledge_seconds_count[1m]) > 0',
                       'increase(schoolops_incident_time_to_resolve_seconds_count[1m]) > 0',
                       'schoolops_escalations_to_director_total{severity="P1", kind="page"} > 0',
                       'schoolops_notifications_total{channel="email", outcome="sent"} > 0',
                       'schoolops_major_incident_opened_timestamp_seconds{state="acknowledged"}',
                       'schoolops_log_matches_total{asset="web-01"} > 0',
                       f"rate(if_hc_in_octets_total{{asset=\"core-sw-1\"}}[{RATE_INTERVAL}])"):
            wait_until(lambda q=promql: prometheus.instant(q), timeout=30, interval=0.5,  # type: ignore[union-attr,misc]
                       what=promql)
        time.sleep(3)  # a few more samples after the last change, for the rates' windows
        now = time.time()
        grafana = {"__rate_interval": RATE_INTERVAL, "__range": f"{int(now - started) + 1}s", "__interval": STEP}

        failed: dict[tuple[str, str, str], str] = {}
        answers: dict[tuple[str, str, str], list[Any]] = {}
        for uid, board in dashboards().items():
            values = resolve_variables(prometheus, board) | grafana
            for panel, target in targets(board):
                key = (uid, panel["title"], target["refId"])
                expr = substitute(target["expr"], values)
                assert "$" not in expr.replace("$1", ""), (key, expr)
                assert key not in answers, f"two targets are called {key}"
                error, answers[key] = run_target(prometheus, expr, target.get("instant", False), now)
                if error:
                    failed[key] = f"{expr}: {error}"
        assert failed == {}
        unexplained = sorted(key for key, result in answers.items() if not result and key not in EXPECTED_EMPTY)
        assert not unexplained, f"empty and not listed in EXPECTED_EMPTY: {unexplained}"
        assert set(EXPECTED_EMPTY) <= set(answers), f"stale EXPECTED_EMPTY: {set(EXPECTED_EMPTY) - set(answers)}"
        assert len(answers) > 100

        # and what the director reads says what happened
        def instant(uid: str, title: str) -> dict[str, float]:
            return {json.dumps(row["metric"], sort_keys=True): float(row["value"][1])
                    for row in answers[(uid, title, "A")]}

        by_site = {json.loads(k)["site"]: v for k, v in instant("schoolops-director", "Health by site").items()}
        assert by_site == {"main-building": 1.0, "north-building": 0.0}  # ghost-01 never reported
        majors = instant("schoolops-director", "Open P1/P2 incidents")
        listed = {row["incident"]: row for row in map(json.loads, majors)}
        assert (listed[str(major["id"])]["severity"], listed[str(major["id"])]["state"]) == ("P1", "acknowledged")
        assert str(minor["id"]) not in listed
        assert 0 <= next(iter(instant("schoolops-director", "Mean time to acknowledge").values())) < 60
        paged = {json.loads(k)["severity"]: v for k, v in instant("schoolops-incidents",
                                                                  "Escalations to the director").items()}
        assert paged["P1"] >= 1
        (ratio,) = instant("schoolops-director", "Patrol pass rate").values()
        assert 0 < ratio < 1  # the root filesystem item is abnormal on purpose
        lint = subprocess.run(["promtool", "check", "metrics"], input=collector.metrics(), capture_output=True,
                              text=True, timeout=60, check=False)
        complaints = [line for line in (lint.stdout + lint.stderr).splitlines() if line.strip()]
        assert complaints == []  # the page with every series above on it
        agent.stop()
    finally:
        if prometheus is not None:
            prometheus.process.stop()
        collector.stop()
        snmpd.stop()

