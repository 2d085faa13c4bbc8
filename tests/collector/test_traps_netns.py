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
from collections.abc import Iterator
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
from tests.netns_peers import IF_TABLE, Switch, ip, snmpd_event_config, switch_namespace
from tests.support import Process, free_port

pytestmark = pytest.mark.peers

@pytest.fixture
def namespace() -> Iterator[Switch]:
    with switch_namespace("tr") as switch:
        yield switch


def snmpd_config(ns: Switch, directory: Path, trap_port: int) -> Path:
    return snmpd_event_config(directory / "snmpd.conf", agent_address=f"127.0.0.1:{free_port()}", community="public",
                              allowed_from="127.0.0.1", trap_sink=f"{ns.host_ip}:{trap_port}",
                              engine_id="schoolops-trap-netns")


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


async def test_interface_flap_in_a_namespace_sends_link_down_then_link_up(namespace: Switch, tmp_path: Path) -> None:
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
