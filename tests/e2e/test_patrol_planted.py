"""The daily patrol over real peers with planted problems: the report lists exactly those as abnormal.

Peers (all started and stopped here, on loopback or in network namespaces this test makes):
- web-01: a real agent on this machine — a 4 MiB tmpfs filled to 94 %, a backup folder whose newest
  dump is three days old (and a configuration backup that is fresh), a log file it watches for failed
  logins; reached over SSH through a real sshd for a command item;
- sw-01: a real snmpd in a "switch" namespace (tests/netns_peers.py) whose port1 loses its link: the
  poll sees it down and snmpd's linkDown trap reaches the collector's asset log;
- portal: a local web service answering 500, and a local HTTPS service whose certificate expires in
  five days, both probed by the collector;
- ghost-01: a server in the inventory that never reports and whose SSH port is closed.

Planted: the full filesystem, the stale backup, port1 down, the 500, the expiring certificate.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from tests.browser import rendered_dom, screenshot
from tests.netns_peers import Switch, ip, snmpd_event_config, switch_namespace
from tests.notify_peers import Mailbox
from tests.probe_peers import expiring_tls_server
from tests.ssh_peers import Sshd
from tests.support import (
    Agent,
    Collector,
    Process,
    cli,
    faults_of,
    free_port,
    free_udp_port,
    http_get,
    metric_value,
    people_file,
    set_secret,
    wait_until,
)

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "patrol-e2e"

CHECKLIST = """\
name: planted
title: {{en: Daily patrol, zh-CN: 日常巡检}}
schedule: "0 8 * * *"
sections:
  - id: servers
    title: {{en: Servers, zh-CN: 服务器}}
    items:
      - id: disk
        check: {{en: Disk usage, zh-CN: 磁盘使用率}}
        standard: {{en: at most 85 %, zh-CN: 不超过 85%}}
        method: {{kind: metric, metric: filesystem.used_percent, key: "{mount}", max: 85}}
        applies_to: {{kind: [server]}}
        on_abnormal: {{type: capacity, severity: P3}}
      - id: memory
        check: {{en: Memory usage, zh-CN: 内存使用率}}
        standard: {{en: at most 99 %, zh-CN: 不超过 99%}}
        method: {{kind: metric, metric: memory.used_percent, max: 99}}
        applies_to: {{kind: [server]}}
        on_abnormal: {{type: capacity, severity: P3}}
      - id: failed-logins
        check: {{en: Failed logins, zh-CN: 登录失败次数}}
        standard: {{en: at most 20, zh-CN: 不超过 20 次}}
        method: {{kind: metric, metric: log.matched_lines, key: auth, max: 20}}
        applies_to: {{kind: [server]}}
        on_abnormal: {{type: security, severity: P3}}
      - id: os
        check: {{en: The server answers over SSH, zh-CN: 服务器可通过 SSH 访问}}
        standard: {{en: uname says Linux, zh-CN: uname 输出 Linux}}
        method: {{kind: ssh, argv: [uname, -s], expect: "^Linux"}}
        applies_to: {{names: [web-01, ghost-01]}}
        on_abnormal: {{type: system, severity: P4}}
  - id: backups
    title: {{en: Storage and backups, zh-CN: 存储与备份}}
    items:
      - id: backup
        check: {{en: Last night's backups exist, zh-CN: 昨晚的备份已生成}}
        standard: {{en: every backup newer than its maximum age, zh-CN: 每个备份均在规定时间内生成}}
        method: {{kind: metric, metric: file.fresh, equals: 1}}
        applies_to: {{kind: [server]}}
        on_abnormal: {{type: system, severity: P3}}
  - id: network
    title: {{en: Network devices, zh-CN: 网络设备}}
    items:
      - id: reachable
        check: {{en: The device answers its SNMP poll, zh-CN: 设备响应 SNMP 轮询}}
        standard: {{en: reachable, zh-CN: 可达}}
        method: {{kind: metric, metric: device.reachable, equals: 1}}
        applies_to: {{kind: [network]}}
        on_abnormal: {{type: network, severity: P2}}
      - id: interfaces
        check: {{en: Enabled interfaces are up, zh-CN: 已启用的端口处于 up 状态}}
        standard: {{en: no enabled interface down, zh-CN: 无已启用但 down 的端口}}
        method: {{kind: metric, metric: interface.oper_down, equals: 0}}
        applies_to: {{kind: [network]}}
        on_abnormal: {{type: network, severity: P3}}
  - id: services
    title: {{en: Websites and services, zh-CN: 网站与业务系统}}
    items:
      - id: http-status
        check: {{en: HTTP status of the web pages, zh-CN: 网页 HTTP 状态码}}
        standard: {{en: 200 (OK), zh-CN: 200（正常）}}
        method: {{kind: metric, metric: http.status, equals: 200}}
        applies_to: {{kind: [service]}}
        on_abnormal: {{type: application, severity: P3}}
      - id: tls-expiry
        check: {{en: Days until the HTTPS certificates expire, zh-CN: HTTPS 证书剩余有效天数}}
        standard: {{en: at least 14 days, zh-CN: 不少于 14 天}}
        method: {{kind: metric, metric: tls.days_left, min: 14}}
        applies_to: {{kind: [service]}}
        on_abnormal: {{type: security, severity: P3}}
  - id: room
    title: {{en: Server room, zh-CN: 机房环境}}
    items:
      - id: humidity
        check: {{en: Humidity, zh-CN: 湿度}}
        standard: {{en: 40-60 %, zh-CN: 40%-60%}}
        method: {{kind: manual}}
"""

PLANTED = {("disk", "web-01"), ("backup", "web-01"), ("interfaces", "sw-01"), ("http-status", "portal"),
           ("tls-expiry", "portal")}


class Failing(BaseHTTPRequestHandler):
    """The portal's home page, broken: 500."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
        body = b"<h1>Internal Server Error</h1>"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def switch() -> Iterator[Switch]:
    with switch_namespace("pt") as made:
        yield made


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """(web port, tls port, the certificate to trust)."""
    web = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    folder = tmp_path / "tls"
    folder.mkdir()
    tls, tls_port = expiring_tls_server(folder, Failing, days=5)
    yield int(web.server_address[1]), tls_port, folder / "tls.pem"
    for server in (web, tls):
        server.shutdown()
        server.server_close()


def run_with_a_terminal(args: list[str], timeout: float = 120.0) -> tuple[str, str]:
    """Run the CLI with its stderr on a pseudo-terminal, as a person at a terminal sees it: (stdout, stderr)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "collector", *args], stdout=subprocess.PIPE, stderr=follower,
                            stdin=subprocess.DEVNULL, text=True)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the program ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    out = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    assert proc.returncode == 0, (out, seen)
    return out, seen.decode("utf-8", errors="replace")


def by_identity(report: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(row["item"], row["asset"], row["key"]): row for section in report["sections"] for row in section["rows"]}


def test_a_patrol_over_real_peers_reports_exactly_the_planted_problems(
    tmp_path: Path, switch: Switch, sshd: Sshd, smtp: tuple[Mailbox, int], tmpfs: Path,
    services: tuple[int, int, Path],
) -> None:
    web_port, tls_port, ca_file = services
    # --- the server's planted state
    backups, configs = tmp_path / "backup", tmp_path / "config-backup"
    backups.mkdir()
    configs.mkdir()
    stale = backups / "school-db-2026-11-21.sql.gz"
    stale.write_bytes(b"dump")
    three_days_ago = time.time() - 3 * 86400
    os.utime(stale, (three_days_ago, three_days_ago))
    (configs / "etc.tar").write_bytes(b"config")
    auth_log = tmp_path / "auth.log"
    auth_log.write_text("")

    runbooks = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", runbooks, ignore=shutil.ignore_patterns("patrol"))
    (runbooks / "patrol").mkdir()
    (runbooks / "patrol" / "planted.yaml").write_text(CHECKLIST.format(mount=tmpfs))
    closed_port = free_port()
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"assets": [
        {"name": "web-01", "kind": "server", "site": "main", "role": "web", "address": "127.0.0.1",
         "ssh": {"username": sshd.username, "key_secret": "ssh.servers", "known_hosts": str(sshd.known_hosts),
                 "port": sshd.port}},
        {"name": "ghost-01", "kind": "server", "site": "main", "role": "web", "address": "127.0.0.1",
         "ssh": {"username": sshd.username, "key_secret": "ssh.servers", "known_hosts": str(sshd.known_hosts),
                 "port": closed_port}},
        {"name": "sw-01", "kind": "network", "site": "main", "role": "access-switch", "address": switch.ns_ip,
         "snmp": {"version": "2c", "community_secret": "snmp.sw", "interval": "2s", "timeout": "0.5s", "retries": 0}},
        {"name": "portal", "kind": "service", "site": "main", "role": "portal", "probes": [
            {"name": "home", "kind": "http", "target": f"http://127.0.0.1:{web_port}/", "interval": "1s",
             "timeout": "2s"},
            {"name": "cert", "kind": "tls", "target": f"localhost:{tls_port}", "interval": "1s", "timeout": "2s",
             "ca_file": str(ca_file)}]},
    ]}))
    trap_port = free_udp_port(switch.host_ip)
    collector = Collector(tmp_path / "collector", extra={
        "runbooks": {"dir": str(runbooks)}, "patrol": {"tick_interval": "0.5s"}, "inventory_file": str(inventory),
        "oncall_file": str(people_file(tmp_path / "oncall.yaml", {"li.na": ["on-call"], "chen.jie": ["on-call"],
                                                                 "liu.director": ["director"]},
                                       languages={"liu.director": "zh-CN"}, smtp_port=smtp[1])), "incidents": {"tick_interval": "0.5s"},
        "network": {"trap_host": switch.host_ip, "trap_port": trap_port}})
    set_secret(collector, "snmp.sw", COMMUNITY)
    set_secret(collector, "ssh.servers", sshd.client_key)
    state = tmp_path / "snmpd-state"
    state.mkdir()
    snmpd_conf = snmpd_event_config(tmp_path / "snmpd.conf", agent_address=f"{switch.ns_ip}:161", community=COMMUNITY,
                                    allowed_from=switch.host_ip, trap_sink=f"{switch.host_ip}:{trap_port}",
                                    engine_id="schoolops-patrol-e2e")
    snmpd = Process(["ip", "netns", "exec", switch.name, "snmpd", "-f", "-C", "-c", str(snmpd_conf), "-Lf",
                     str(tmp_path / "snmpd.log"), "-p", str(tmp_path / "snmpd.pid"), "-m", "", "-I", "-smux"],
                    tmp_path / "snmpd.out", env={**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(state)})
    agent: Agent | None = None
    try:
        snmpd.start()
        collector.start()
        agent = Agent(tmp_path / "agent", collector.url, collector.token("web-01"), "web-01", extra={"probes": {
            "files": [{"name": "nightly-backup", "path": str(backups), "pattern": "*.sql.gz", "max_age": "26h"},
                      {"name": "config-backup", "path": str(configs), "pattern": "*.tar", "max_age": "26h"}],
            "logs": [{"name": "auth", "path": str(auth_log), "patterns": ["Failed password"]}]}})
        agent.start()
        config = ["--config", str(collector.config_path)]

        # --- plant the rest: the full disk, port1's cable pulled, three failed logins
        wait_until(lambda: metric_value(collector.metrics(), "if_oper_status", asset="sw-01", if_name="port1") == 1,
                   timeout=30, what="port1 polled up")
        (tmpfs / "fill").write_bytes(os.urandom(int(3.75 * 1024 * 1024)))
        ip("-n", switch.pc, "link", "set", switch.pc_if, "down")
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_log_matches_total", asset="web-01", check="auth")
                   is not None, timeout=30, what="the agent watching the log")
        with auth_log.open("a") as log:
            for n in range(3):
                log.write(f"Nov 24 07:5{n}:00 web-01 sshd[99{n}]: Failed password for root from 10.9.8.{n} port 22\n")
        wait_until(lambda: (metric_value(collector.metrics(), "schoolops_log_matches_total", asset="web-01", check="auth")
                            or 0) >= 3, timeout=30, what="the failed logins reported")
        wait_until(lambda: any(f["rule"] == "filesystem_usage" and f["active"] for f in faults_of(collector, "web-01")),
                   timeout=30, what="the full tmpfs reported")
        wait_until(lambda: metric_value(collector.metrics(), "if_oper_status", asset="sw-01", if_name="port1") == 2,
                   timeout=30, what="port1 polled down")
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_probe_http_status", asset="portal",
                                        probe="home") == 500, timeout=30, what="the portal's 500 probed")
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_probe_tls_expiry_seconds", asset="portal",
                                        probe="cert") is not None, timeout=30, what="the certificate probed")

        # --- the patrol, started by hand, with its progress on the terminal
        out, terminal = run_with_a_terminal(["patrol", "run", "planted", "--as", "li.na", *config])
        run_id = int(re.search(r"patrol run (\d+): done", out).group(1))  # type: ignore[union-attr]
        total = re.findall(r"(\d+)/(\d+) checks +(\d+)%", terminal)
        assert total and total[-1][0] == total[-1][1] and total[-1][2] == "100", terminal
        report = json.loads(cli("patrol", "show", str(run_id), "--format", "json", *config).stdout)
        rows = by_identity(report)

        # exactly the planted problems are abnormal, each with its value and evidence
        abnormal = {(item, asset) for (item, asset, _), row in rows.items() if row["status"] == "abnormal"}
        assert abnormal == PLANTED, json.dumps(report["sections"], indent=1, ensure_ascii=False)
        disk = rows[("disk", "web-01", str(tmpfs))]
        assert disk["value"] > 85 and "used of 4.0 MiB" in disk["evidence"], disk
        backup = rows[("backup", "web-01", "nightly-backup")]
        assert backup["value"] == 0 and stale.name in backup["evidence"] and "3.0 days old" in backup["evidence"], backup
        assert rows[("backup", "web-01", "config-backup")]["status"] == "normal"
        port = rows[("interfaces", "sw-01", "port1")]
        assert port["value"] == 1 and "oper down" in port["evidence"], port
        http = rows[("http-status", "portal", "home")]
        assert http["value"] == 500 and "500" in http["evidence"], http
        cert = rows[("tls-expiry", "portal", "cert")]
        assert 4 < cert["value"] < 5.1 and "at least 14" in cert["evidence"], cert

        # everything else judged is normal; what could not be judged says why
        for (item, asset, key), row in rows.items():
            if (item, asset) in PLANTED and row["status"] == "abnormal":
                continue
            if asset == "ghost-01":
                assert row["status"] == "not_checked", row
                reason = "unreachable over SSH" if item == "os" else "no report from ghost-01"
                assert reason in row["reason"], row
            elif item == "humidity":
                assert row["status"] == "pending"
            else:
                assert row["status"] == "normal", row
        assert rows[("os", "web-01", "")]["evidence"].endswith(": Linux"), rows[("os", "web-01", "")]
        assert {("interfaces", "sw-01", "lo"), ("reachable", "sw-01", "")} <= set(rows)

        # Prometheus sees the run: pass rate, abnormal items by section, when and how long
        page = wait_until(lambda: next((text for text in [collector.metrics()] if metric_value(
            text, "schoolops_patrol_last_run_timestamp_seconds", checklist="planted")), None), timeout=30,
            what="the run's metrics")  # set just after the run is marked done
        judged = [row for row in rows.values() if row["status"] in ("normal", "abnormal")]
        normal = sum(1 for row in judged if row["status"] == "normal")
        ratio = metric_value(page, "schoolops_patrol_pass_ratio", checklist="planted")
        assert ratio is not None and abs(ratio - normal / len(judged)) < 1e-9, (ratio, normal, len(judged))
        by_section = {section: metric_value(page, "schoolops_patrol_abnormal_items", checklist="planted",
                                            section=section) for section in ("servers", "backups", "network",
                                                                             "services", "room")}
        assert by_section == {"servers": 1, "backups": 1, "network": 1, "services": 2, "room": 0}, by_section
        last = metric_value(page, "schoolops_patrol_last_run_timestamp_seconds", checklist="planted")
        assert last is not None and abs(last - time.time()) < 120
        assert (metric_value(page, "schoolops_patrol_duration_seconds", checklist="planted") or -1) >= 0

        # a fault for each planted problem, through the normal incident path
        for item, asset in PLANTED:
            key = next(k for (i, a, k), row in rows.items() if (i, a) == (item, asset) and row["status"] == "abnormal")
            assert any(f["rule"] == f"patrol:{item}" and f["key"] == key and f["active"]
                       for f in faults_of(collector, asset)), (item, asset, faults_of(collector, asset))

        # the log lines of note since the previous patrol (none before: the day before), per asset
        logs = {entry["asset"]: entry for entry in report["logs"]["assets"]}
        assert logs["web-01"]["counts"] == {"log:auth": 3}
        assert [e["text"].split(": ", 1)[1] for e in logs["web-01"]["latest"]] == [
            f"Failed password for root from 10.9.8.{n} port 22" for n in range(3)]
        assert any(e["source"] == "trap" and e["text"].startswith("link down port1") for e in logs["sw-01"]["latest"]), logs["sw-01"]

        # the director's summary links to the report, which opens in their language
        mail = wait_until(lambda: smtp[0].to("liu.director@school.test"), timeout=30, what="the director's summary")[0]
        text = mail.get_body(preferencelist=("plain",)).get_content()
        assert "5 项异常" in mail["Subject"], mail["Subject"]
        assert "值得注意的日志" in text and "web-01 3" in text, text
        link = re.search(r"(http://\S+/patrol/runs/\d+/report\?\S+)", text).group(1)  # type: ignore[union-attr]
        status, body = http_get(link)
        page = body.decode()
        assert status == 200 and "日常巡检记录表" in page and page.count('class="abnormal"') == len(PLANTED)
        forged = link.replace(f"/runs/{run_id}/", f"/runs/{run_id + 1}/")
        assert http_get(forged)[0] == 403
        assert http_get(link.replace("lang=zh-CN", "lang=en"))[0] == 403

        # the report renders in a real browser: laid out, not empty, the abnormal rows marked
        dom = rendered_dom(link)
        assert dom.count('<tr class="abnormal">') == len(PLANTED)
        for name in (str(tmpfs), "nightly-backup", "port1", "home", "cert"):
            assert name in dom
        shot = screenshot(link, tmp_path / "patrol-report.png")
        image = Image.open(shot).convert("RGB")
        colours = image.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 20, "the screenshot is (nearly) one colour: an empty page"
        marked = sum(count for count, (r, g, b) in colours if abs(r - 0xFD) < 6 and abs(g - 0xEC) < 6 and abs(b - 0xEA) < 6)
        assert marked > 2000, f"the abnormal rows' background shows in {marked} pixels only"
        artifacts = os.environ.get("SCHOOLOPS_TEST_ARTIFACTS")
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(artifacts) / "patrol-report.png")
    finally:
        if agent is not None:
            agent.stop()
        collector.stop()
        snmpd.stop()


def test_a_report_link_that_is_expired_or_cut_short_is_refused(tmp_path: Path) -> None:
    """The signed link's own checks, against a running collector with no runs."""
    from collector.patrol.reportweb import report_link

    collector = Collector(tmp_path / "collector").start()
    try:
        key = (collector.directory / "data" / "link.key").read_bytes()
        expired = report_link(collector.url, key, 1, "en", now=time.time() - 40 * 86400)
        assert http_get(expired)[0] == 410
        fresh = report_link(collector.url, key, 1, "en", now=time.time())
        assert http_get(fresh)[0] == 404  # genuine, but there is no run 1
        parts = urllib.parse.urlsplit(fresh)
        assert http_get(f"{collector.url}{parts.path}")[0] == 400
        assert http_get(fresh.replace("lang=en", "lang=fr"))[0] == 400
    finally:
        collector.stop()
