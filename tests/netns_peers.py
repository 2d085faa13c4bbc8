"""A switch in a network namespace of the test's own, for SNMP and trap tests.

Topology (made and removed by the fixture; the addresses exist only in these namespaces):

    this namespace                  "switch" namespace                    "pc" namespace
    host_if 10.254.N.1 ================ sw_if 10.254.N.2  (snmpd)
                                        port1 ==================================== eth0

``port1``'s cable goes to a PC in its own namespace, so only the switch's port shows in its
ifTable, and the test can pull the cable (``eth0`` down: port1 stays admin up, goes oper down).
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

IF_TABLE = ".1.3.6.1.2.1.2.2.1"  # .1 ifIndex, .7 ifAdminStatus, .8 ifOperStatus
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class Switch:
    name: str  # the switch's namespace
    pc: str  # the namespace at the other end of port1's cable
    host_if: str  # the veth end in this (the test's) namespace
    host_ip: str
    ns_ip: str
    port: str = "port1"  # the switch port the test flaps
    pc_if: str = "eth0"  # the PC's end of that cable

    def if_index(self, interface: str) -> int:
        return int(ip("-n", self.name, "-o", "link", "show", interface).stdout.split(":", 1)[0])


@contextmanager
def switch_namespace(prefix: str) -> Iterator[Switch]:
    """Make the topology above; skip the test if namespaces are not permitted; remove all of it after."""
    tag = f"{os.getpid() % 10000}{random.randrange(100):02d}"
    name, pc, host_if, sw_if = f"so-{prefix}-sw-{tag}", f"so-{prefix}-pc-{tag}", f"so{prefix}h{tag}", f"so{prefix}n{tag}"
    added = ip("netns", "add", name, check=False)
    if added.returncode != 0:
        if any(word in added.stderr for word in ("Operation not permitted", "Permission denied")):
            pytest.skip(f"network namespaces are not permitted here: {added.stderr.strip()}")
        raise AssertionError(f"ip netns add failed: {added.stderr.strip()}")
    try:
        ip("netns", "add", pc)
        used = ip("-o", "-4", "addr").stdout
        subnet = next(n for n in random.sample(range(256), 256) if f" 10.254.{n}." not in used)
        host_ip, ns_ip = f"10.254.{subnet}.1", f"10.254.{subnet}.2"
        ip("link", "add", host_if, "type", "veth", "peer", "name", sw_if)
        ip("link", "set", sw_if, "netns", name)
        ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", sw_if)
        ip("-n", name, "link", "set", sw_if, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "port1", "type", "veth", "peer", "name", "eth0", "netns", pc)
        ip("-n", name, "link", "set", "port1", "up")
        ip("-n", pc, "link", "set", "eth0", "up")
        yield Switch(name, pc, host_if, host_ip, ns_ip)
    finally:
        ip("netns", "del", pc, check=False)
        ip("netns", "del", name, check=False)  # removes the interfaces inside, and so the veth pairs
        ip("link", "del", host_if, check=False)


def snmpd_event_config(path: Path, *, agent_address: str, community: str, allowed_from: str, trap_sink: str,
                       engine_id: str) -> Path:
    """An snmpd config that sends linkDown/linkUp (DisMan Event MIB) when an ifOperStatus changes."""
    link = f"-o {IF_TABLE}.1 -o {IF_TABLE}.7 -o {IF_TABLE}.8"
    lines = [
        f"agentAddress udp:{agent_address}",
        f"engineID {engine_id}",
        f"rocommunity {community} {allowed_from}",
        "dontLogTCPWrappersConnects yes",
        # the Event MIB's monitors query the agent internally as this user
        "createUser internalmon",
        "rouser internalmon noauth",
        "iquerySecName internalmon",
        f"trap2sink {trap_sink} {community}",
        f"notificationEvent linkDownTrap {LINK_DOWN} {link}",
        f"notificationEvent linkUpTrap {LINK_UP} {link}",
        f'monitor -r 1 -S -e linkDownTrap "link down" {IF_TABLE}.8 == 2',
        f'monitor -r 1 -S -e linkUpTrap "link up" {IF_TABLE}.8 != 2',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
