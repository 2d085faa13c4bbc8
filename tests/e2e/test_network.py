"""Network gear end to end: a real snmpd polled by the collector, probes, config backups, traps."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.probe_peers import expiring_tls_server
from tests.snmp_peers import start_snmpd
from tests.support import (
    Collector,
    cli,
    faults_of,
    free_udp_port,
    metric_value,
    set_secret,
    wait_until,
)

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = "overrides:\n  - rule: probe_failed\n    set: {for: 0s}\n"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(ROOT / "alerts", directory)
    (directory / "zz-test.yaml").write_text(OVERRIDES)
    return directory


def network_collector(tmp_path: Path, rules_dir: Path, assets: list[dict[str, Any]], **network: Any) -> Collector:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"assets": assets}))
    return Collector(tmp_path / "collector", extra={
        "inventory_file": str(inventory), "rules_dir": str(rules_dir),
        "incidents": {"tick_interval": "0.5s", "teaching_roles": []}, "network": network})


def test_a_polled_switch_shows_on_metrics_and_its_outage_is_an_incident(tmp_path: Path, rules_dir: Path) -> None:
    port, trap_port = free_udp_port(), free_udp_port()
    snmpd = start_snmpd(tmp_path / "snmpd", port)
    collector = network_collector(tmp_path, rules_dir, [
        {"name": "core-sw-1", "kind": "network", "site": "main", "tier": "core", "address": "127.0.0.1",
         "snmp": {"version": "2c", "port": port, "community_secret": "snmp.ro", "interval": "5s", "timeout": "0.5s",
                  "retries": 0}}], trap_host="127.0.0.1", trap_port=trap_port)
    set_secret(collector, "snmp.ro", "public-e2e")
    collector.start()
    try:
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_device_up", asset="core-sw-1") == 1,
                   timeout=30, what="the switch polled")
        page = collector.metrics()
        assert metric_value(page, "if_oper_status", asset="core-sw-1", if_name="lo") == 1
        assert metric_value(page, "if_hc_in_octets_total", asset="core-sw-1", if_name="lo") is not None
        assert (metric_value(page, "schoolops_snmp_polls_total", result="ok") or 0) >= 1
        lint = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
        assert lint.returncode == 0, lint.stdout + lint.stderr

        # a linkDown trap for lo (ifIndex 1) is the interface_down fault at once; the next poll, which
        # still sees lo up, clears that same fault: trap and poll are one fault, not two
        subprocess.run(["snmptrap", "-v", "2c", "-c", "public-e2e", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3",
                        "1.3.6.1.2.1.2.2.1.1.1", "i", "1"], check=True, timeout=30, env={**os.environ, "MIBS": ""})
        down = wait_until(lambda: [f for f in faults_of(collector, "core-sw-1") if f["rule"] == "interface_down"],
                          timeout=20, what="the linkDown trap's fault")
        assert len(down) == 1 and down[0]["key"] == "lo"
        wait_until(lambda: not [f for f in faults_of(collector, "core-sw-1") if f["rule"] == "interface_down" and f["active"]],
                   timeout=20, what="the next poll clearing it")

        # a deliberate shutdown: the linkDown trap carries ifAdminStatus down(2) — recorded, not a fault
        accepted = metric_value(collector.metrics(), "schoolops_snmp_traps_total", outcome="accepted") or 0
        subprocess.run(["snmptrap", "-v", "2c", "-c", "public-e2e", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3",
                        "1.3.6.1.2.1.2.2.1.1.1", "i", "1", "1.3.6.1.2.1.2.2.1.7.1", "i", "2",
                        "1.3.6.1.2.1.2.2.1.8.1", "i", "2"], check=True, timeout=30, env={**os.environ, "MIBS": ""})
        wait_until(lambda: (metric_value(collector.metrics(), "schoolops_snmp_traps_total", outcome="accepted") or 0)
                   > accepted, timeout=10, what="the shutdown trap accepted")
        time.sleep(1.5)  # the engine has evaluated it by now (it evaluates as the trap is applied)
        assert not [f for f in faults_of(collector, "core-sw-1") if f["rule"] == "interface_down" and f["active"]]
        snmpd.stop()
        fault = wait_until(lambda: [f for f in faults_of(collector, "core-sw-1") if f["rule"] == "device_unreachable"],
                           timeout=30, what="the switch down")[0]
        assert fault["severity"] == "P1" and "core asset" in fault["reason"]  # base P2, raised for a core switch
    finally:
        snmpd.stop()
        collector.stop()


class Site(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
        body = b"<h1>Welcome to the school portal</h1>"
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_probes_turn_a_failing_site_and_an_expiring_certificate_into_incidents(tmp_path: Path, rules_dir: Path) -> None:
    web = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    tls, tls_port = expiring_tls_server(tmp_path, Site, days=2)
    collector = network_collector(tmp_path, rules_dir, [
        {"name": "portal", "kind": "service", "site": "main", "tier": "important", "probes": [
            {"name": "home", "kind": "http", "target": f"http://127.0.0.1:{web.server_address[1]}/",
             "body_contains": "Welcome", "interval": "1s", "timeout": "2s"},
            {"name": "cert", "kind": "tls", "target": f"localhost:{tls_port}", "interval": "1s", "timeout": "2s",
             "ca_file": str(tmp_path / "tls.pem")}]}])
    collector.start()
    try:
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_probe_up", asset="portal", probe="home") == 1,
                   timeout=30, what="the site up")
        cert = wait_until(lambda: [f for f in faults_of(collector, "portal") if f["rule"] == "tls_certificate_expiry"],
                          timeout=30, what="the expiring certificate")[0]
        assert cert["base_severity"] == "P2" and cert["type"] == "security"
        Site.status = 500
        failed = wait_until(lambda: [f for f in faults_of(collector, "portal") if f["rule"] == "probe_failed"],
                            timeout=30, what="the site failing")[0]
        assert failed["key"] == "home"
        assert metric_value(collector.metrics(), "schoolops_probe_http_status", asset="portal", probe="home") == 500
    finally:
        Site.status = 200
        web.shutdown()
        web.server_close()
        tls.shutdown()
        collector.stop()


@pytest.fixture
def fake_switch(tmp_path: Path) -> Iterator[tuple[Any, int, str]]:
    from tests.fake_cli_device import start_fake_device

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server, port, host_key = asyncio.run_coroutine_threadsafe(
        start_fake_device(hostname="lab-sw-1", username="admin", password="cisco-pass", enable_secret="en-secret"), loop).result(30)
    try:
        yield server, port, host_key
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_a_configuration_change_between_backups_is_committed_and_is_a_security_fault(
    tmp_path: Path, rules_dir: Path, fake_switch: tuple[Any, int, str]
) -> None:
    server, port, host_key = fake_switch
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(host_key + "\n")
    collector = network_collector(tmp_path, rules_dir, [
        {"name": "lab-sw-1", "kind": "network", "site": "lab", "address": "127.0.0.1",
         "cli": {"device_type": "cisco_ios", "username": "admin", "password_secret": "sw.pass", "enable_secret": "sw.enable",
                 "known_hosts": str(known_hosts), "port": port, "backup_interval": "3s", "timeout": "20s"}}])
    set_secret(collector, "sw.pass", "cisco-pass")
    set_secret(collector, "sw.enable", "en-secret")
    collector.start()
    config = str(collector.config_path)
    try:
        wait_until(lambda: cli("backups", "history", "lab-sw-1", "--config", config, check=False).returncode == 0
                   and "lab-sw-1" in cli("backups", "show", "lab-sw-1", "--config", config, check=False).stdout,
                   timeout=40, what="the first backup")
        server.device.running_config = server.device.running_config.replace("vlan 10\n", "vlan 10\n!\nvlan 30\n name guests\n")
        fault = wait_until(lambda: [f for f in faults_of(collector, "lab-sw-1") if f["rule"] == "config_changed"],
                           timeout=40, what="the change noticed")[0]
        assert fault["type"] == "security" and "outside a maintenance window" in fault["summary"]
        diff = cli("backups", "diff", "lab-sw-1", "--config", config).stdout
        assert "+vlan 30" in diff and "name guests" in diff
        history = cli("backups", "history", "lab-sw-1", "--config", config).stdout
        assert history.count("lab-sw-1") >= 2
        assert "cisco-pass" not in collector.process.log() and "en-secret" not in collector.process.log()  # type: ignore[union-attr]
    finally:
        collector.stop()


def test_an_snmp_authentication_failure_trap_is_a_security_fault(tmp_path: Path, rules_dir: Path) -> None:
    trap_port = free_udp_port()
    collector = network_collector(tmp_path, rules_dir, [
        {"name": "edge-sw-1", "kind": "network", "address": "127.0.0.1",
         "snmp": {"version": "2c", "port": free_udp_port(), "community_secret": "snmp.ro", "interval": "60s",
                  "timeout": "0.5s", "retries": 0}}], trap_host="127.0.0.1", trap_port=trap_port)
    set_secret(collector, "snmp.ro", "public-e2e")
    collector.start()
    try:
        time.sleep(1)
        subprocess.run(["snmptrap", "-v", "2c", "-c", "public-e2e", f"127.0.0.1:{trap_port}", "",
                        "1.3.6.1.6.3.1.1.5.5"], check=True, timeout=30, env={**os.environ, "MIBS": ""})
        fault = wait_until(lambda: [f for f in faults_of(collector, "edge-sw-1") if f["type"] == "security"],
                           timeout=30, what="the trap's fault")[0]
        assert "authentication failure" in fault["summary"]
        subprocess.run(["snmptrap", "-v", "2c", "-c", "wrong-community", f"127.0.0.1:{trap_port}", "",
                        "1.3.6.1.6.3.1.1.5.5"], check=True, timeout=30, env={**os.environ, "MIBS": ""})
        time.sleep(1)
        assert len([f for f in faults_of(collector, "edge-sw-1") if f["type"] == "security"]) == 1
    finally:
        collector.stop()
