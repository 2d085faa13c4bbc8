"""A real snmpd in a network namespace sends linkDown/linkUp when one of its interfaces flaps.

The test makes its own namespace with a veth pair to this one (10.254.N.0/30, addresses that
exist only in the namespaces the test makes; traffic stays on this machine), plus a second veth
pair inside the namespace as the "switch port" to flap. snmpd runs inside the namespace with the
DisMan Event MIB's ``monitor``/``notificationEvent`` watching ifOperStatus and ``trap2sink``
pointing at the TrapReceiver on the host end. Everything is removed at teardown; processes are
stopped by their PID.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.network.trap_receiver import TrapReceiver
from collector.network.trap_sources import TrapSource
from collector.network.traps import (
    LINK_DOWN,
    LINK_UP,
    TrapEvent,
    TrapKind,
)
from tests.support import Process, free_port

pytestmark = pytest.mark.peers

IF_TABLE = ".1.3.6.1.2.1.2.2.1"  # .1 ifIndex, .7 ifAdminStatus, .8 ifOperStatus


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class Namespace:
    name: str
    host_if: str  # the veth end in this (the test's) namespace
    host_ip: str
    ns_ip: str
    port: str  # the interface inside the namespace that the test flaps

    def if_index(self, interface: str) -> int:
        return int(ip("-n", self.name, "-o", "link", "show", interface).stdout.split(":", 1)[0])


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    tag = f"{os.getpid() % 10000}{random.randrange(100):02d}"
    name, host_if, ns_if = f"schoolops-trap-{tag}", f"sotrh{tag}", f"sotrn{tag}"
    added = ip("netns", "add", name, check=False)
    if added.returncode != 0:
        if any(word in added.stderr for word in ("Operation not permitted", "Permission denied")):
            pytest.skip(f"network namespaces are not permitted here: {added.stderr.strip()}")
        raise AssertionError(f"ip netns add failed: {added.stderr.strip()}")
    try:
        used = ip("-o", "-4", "addr").stdout
        subnet = next(n for n in random.sample(range(256), 256) if f" 10.254.{n}." not in used)
        host_ip, ns_ip = f"10.254.{subnet}.1", f"10.254.{subnet}.2"
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", name)
        ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        ip("-n", name, "link", "set", ns_if, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "port1", "type", "veth", "peer", "name", "port1peer")
        ip("-n", name, "link", "set", "port1", "up")
        ip("-n", name, "link", "set", "port1peer", "up")
        yield Namespace(name, host_if, host_ip, ns_ip, "port1")
    finally:
        ip("netns", "del", name, check=False)  # removes the interfaces inside, and so the veth pair
        ip("link", "del", host_if, check=False)


def snmpd_config(ns: Namespace, directory: Path, trap_port: int) -> Path:
    link = f"-o {IF_TABLE}.1 -o {IF_TABLE}.7 -o {IF_TABLE}.8"
    lines = [
        f"agentAddress udp:127.0.0.1:{free_port()}",
        "engineID schoolops-trap-netns",
        "rocommunity public 127.0.0.1",
        "dontLogTCPWrappersConnects yes",
        # the Event MIB's monitors query the agent internally as this user
        "createUser internalmon",
        "rouser internalmon noauth",
        "iquerySecName internalmon",
        f"trap2sink {ns.host_ip}:{trap_port} public",
        f"notificationEvent linkDownTrap {LINK_DOWN} {link}",
        f"notificationEvent linkUpTrap {LINK_UP} {link}",
        f'monitor -r 1 -S -e linkDownTrap "link down" {IF_TABLE}.8 == 2',
        f'monitor -r 1 -S -e linkUpTrap "link up" {IF_TABLE}.8 != 2',
    ]
    path = directory / "snmpd.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def next_matching(events: asyncio.Queue[TrapEvent], kind: TrapKind, if_index: int | None, timeout: float) -> TrapEvent:
    """The next event of this kind (and interface), skipping others; bounded in time."""
    async def find() -> TrapEvent:
        while True:
            event = await events.get()
            if event.kind == kind and (if_index is None or event.if_index == if_index):
                return event

    try:
        return await asyncio.wait_for(find(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {kind} trap (ifIndex {if_index}) within {timeout}s") from None


async def test_interface_flap_in_a_namespace_sends_link_down_then_link_up(namespace: Namespace, tmp_path: Path) -> None:
    events: asyncio.Queue[TrapEvent] = asyncio.Queue()
    assets: list[str] = []

    async def on_trap(asset: str, event: TrapEvent) -> None:
        assets.append(asset)
        await events.put(event)

    sources = {namespace.ns_ip: TrapSource("ns-switch", {"ns_community": "public"})}
    receiver = TrapReceiver(sources, on_trap, host=namespace.host_ip, port=0)
    await receiver.start()
    persistent = tmp_path / "snmpd-state"
    persistent.mkdir()
    config = snmpd_config(namespace, tmp_path, receiver.addresses[0][1])
    snmpd = Process(
        ["ip", "netns", "exec", namespace.name, "snmpd", "-f", "-C", "-c", str(config), "-Lf", str(tmp_path / "snmpd.log"),
         "-p", str(tmp_path / "snmpd.pid"), "-m", "", "-I", "-smux"],
        tmp_path / "snmpd.out",
        env={**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(persistent)},
    )
    try:
        snmpd.start()  # `ip netns exec` execs snmpd: the PID is snmpd's
        await next_matching(events, TrapKind.COLD_START, None, timeout=10)  # snmpd is up and reaches us
        port_index = namespace.if_index(namespace.port)

        ip("-n", namespace.name, "link", "set", namespace.port, "down")
        down = await next_matching(events, TrapKind.LINK_DOWN, port_index, timeout=10)
        ip("-n", namespace.name, "link", "set", namespace.port, "up")
        up = await next_matching(events, TrapKind.LINK_UP, port_index, timeout=10)
    finally:
        snmpd.stop(timeout=5)
        await receiver.stop()
        log = (tmp_path / "snmpd.log").read_text(errors="replace") if (tmp_path / "snmpd.log").exists() else ""
    for event in (down, up):
        assert (event.source, event.version, event.principal) == (namespace.ns_ip, "2c", "ns_community")
        assert ((f"{IF_TABLE[1:]}.8.{port_index}", "2" if event is down else "1") in event.varbinds), (event, log)
    assert down.trap_oid == LINK_DOWN and up.trap_oid == LINK_UP and up.received_at >= down.received_at
    assert set(assets) == {"ns-switch"}
    assert receiver.stats["unknown_source"] == 0 and receiver.stats["bad_auth"] == 0
