"""A switch in a network namespace, end to end: the real collector polls its real snmpd, and a port
losing its link is an ``interface_down`` fault at once (snmpd's linkDown trap), cleared by linkUp.

Topology (all made and removed by the test; addresses exist only in these namespaces):

    this namespace                  "switch" namespace                    "pc" namespace
    collector  host_if 10.254.N.1 ==== sw_if 10.254.N.2  snmpd :161
               (polls, trap port)      port1 ==================================== eth0

snmpd watches ifOperStatus with the DisMan Event MIB (``monitor`` + ``notificationEvent``) and
sends linkDown/linkUp to the collector's trap port on the host end of the veth (``trap2sink``).

The port is flapped the way a cable is pulled: the PC end (``eth0``) goes down, so the switch's
``port1`` stays administratively up and goes operationally down (no carrier). That is what the
``interface_down`` rule means. ``ip link set port1 down`` inside the switch would instead be an
administrative shutdown (ifAdminStatus 2, which the rule deliberately ignores).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.netns_peers import Switch, ip, snmpd_event_config, switch_namespace
from tests.support import (
    Collector,
    Process,
    faults_of,
    free_udp_port,
    metric_value,
    set_secret,
    wait_until,
)

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]

COMMUNITY = "ns-switch-e2e"
ASSET = "ns-sw-1"


@pytest.fixture
def switch() -> Iterator[Switch]:
    with switch_namespace("e2e") as made:
        yield made


def snmpd_config(sw: Switch, directory: Path, trap_port: int) -> Path:
    return snmpd_event_config(directory / "snmpd.conf", agent_address=f"{sw.ns_ip}:161", community=COMMUNITY,
                              allowed_from=sw.host_ip, trap_sink=f"{sw.host_ip}:{trap_port}",
                              engine_id="schoolops-e2e-netns")


# ---- the collector (after tests/e2e/test_network.py) ------------------------------------------

def port_faults(collector: Collector, key: str) -> list[dict[str, Any]]:
    return [f for f in faults_of(collector, ASSET) if f["rule"] == "interface_down" and f["key"] == key]


def log_events(collector: Collector, event: str) -> list[dict[str, Any]]:
    found = []
    for line in collector.process.log().splitlines() if collector.process else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


def traps(collector: Collector, outcome: str) -> float:
    return metric_value(collector.metrics(), "schoolops_snmp_traps_total", outcome=outcome) or 0.0


def test_a_switch_port_losing_its_link_is_an_interface_down_fault_at_once_and_clears_when_it_returns(
    switch: Switch, tmp_path: Path
) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "alerts", rules_dir)
    trap_port = free_udp_port(switch.host_ip)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"assets": [
        {"name": ASSET, "kind": "network", "site": "main", "tier": "important", "address": switch.ns_ip,
         "snmp": {"version": "2c", "community_secret": "snmp.ns", "interval": "5s", "timeout": "0.5s", "retries": 0}}]}))
    collector = Collector(tmp_path / "collector", extra={
        "inventory_file": str(inventory), "rules_dir": str(rules_dir),
        "incidents": {"tick_interval": "0.5s", "teaching_roles": []},
        "network": {"trap_host": switch.host_ip, "trap_port": trap_port}})
    set_secret(collector, "snmp.ns", COMMUNITY)

    state = tmp_path / "snmpd-state"
    state.mkdir()
    snmpd = Process(
        ["ip", "netns", "exec", switch.name, "snmpd", "-f", "-C", "-c", str(snmpd_config(switch, tmp_path, trap_port)),
         "-Lf", str(tmp_path / "snmpd.log"), "-p", str(tmp_path / "snmpd.pid"), "-m", "", "-I", "-smux"],
        tmp_path / "snmpd.out", env={**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(state)},
    )
    try:
        snmpd.start()  # `ip netns exec` execs snmpd: the PID is snmpd's
        collector.start()
        port_index = switch.if_index(switch.port)

        # the poll over the veth sees the port up, under the name snmpd gives it (ifName)
        wait_until(lambda: metric_value(collector.metrics(), "if_oper_status", asset=ASSET, if_name=switch.port) == 1,
                   timeout=20, what=f"{switch.port} polled up")
        page = collector.metrics()
        assert metric_value(page, "schoolops_device_up", asset=ASSET) == 1
        assert metric_value(page, "if_admin_status", asset=ASSET, if_name=switch.port, if_index=str(port_index)) == 1
        accepted_before = traps(collector, "accepted")

        # the cable is pulled at the PC: port1 stays admin up, goes oper down; snmpd's linkDown is the fault at once
        ip("-n", switch.pc, "link", "set", switch.pc_if, "down")
        pulled = time.monotonic()
        down = wait_until(lambda: [f for f in port_faults(collector, switch.port) if f["active"]],
                          timeout=10, interval=0.2, what=f"interface_down for {switch.port}")
        applied = [e for e in log_events(collector, "trap_applied") if e.get("asset") == ASSET]
        assert any(e.get("kind") == "link_down" and e.get("if_index") == port_index for e in applied), (
            "the fault did not come from the linkDown trap", applied, snmpd.log())
        assert len(down) == 1 and down[0]["severity"] == "P3", down
        assert traps(collector, "accepted") >= accepted_before + 1

        # the next poll (admin up, oper down) agrees: still that one fault, not a second one
        polls = metric_value(collector.metrics(), "schoolops_snmp_polls_total", result="ok") or 0
        wait_until(lambda: (metric_value(collector.metrics(), "schoolops_snmp_polls_total", result="ok") or 0) > polls,
                   timeout=10, interval=0.2, what="the next poll")
        page = collector.metrics()
        assert metric_value(page, "if_oper_status", asset=ASSET, if_name=switch.port) == 2
        assert metric_value(page, "if_admin_status", asset=ASSET, if_name=switch.port) == 1
        still = port_faults(collector, switch.port)
        assert len(still) == 1 and still[0]["active"], still

        # the cable is back: linkUp clears that same fault
        ip("-n", switch.pc, "link", "set", switch.pc_if, "up")
        wait_until(lambda: not [f for f in port_faults(collector, switch.port) if f["active"]],
                   timeout=10, interval=0.2, what=f"interface_down for {switch.port} cleared")
        faults = port_faults(collector, switch.port)
        assert len(faults) == 1 and faults[0]["fingerprint"] == down[0]["fingerprint"], faults
        applied = [e for e in log_events(collector, "trap_applied") if e.get("asset") == ASSET]
        assert any(e.get("kind") == "link_up" and e.get("if_index") == port_index for e in applied), (applied, snmpd.log())

        page = collector.metrics()
        assert (metric_value(page, "schoolops_snmp_traps_total", outcome="accepted") or 0) >= accepted_before + 2
        for refused in ("unknown_source", "bad_auth", "dropped", "callback_failed"):
            assert metric_value(page, "schoolops_snmp_traps_total", outcome=refused) == 0, (refused, page)
        assert not [f for f in faults_of(collector, ASSET) if f["rule"] == "device_unreachable"]
        assert time.monotonic() - pulled < 30
    finally:
        collector.stop()
        snmpd.stop(timeout=5)
