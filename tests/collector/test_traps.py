"""Traps: real Net-SNMP snmptrap/snmpinform against a TrapReceiver on 127.0.0.1; the pure parts alone.

Who may send (TrapSource, TrapUser, engine IDs) is tested in test_trap_sources.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from collector.domain import FaultType, Severity
from collector.network.trap_receiver import TrapReceiver
from collector.network.trap_sources import TrapSource, TrapUser
from collector.network.traps import (
    LINK_DOWN,
    LINK_UP,
    TrapError,
    TrapEvent,
    TrapKind,
    TrapRule,
    classify_trap,
    default_trap_rules,
    trap_event,
)

ENGINE = "8000000001020304aabb"  # the sending device's snmpEngineID (snmptrap -e)
AUTH, PRIV = "authpass-123", "privpass-123"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
COLD_START, WARM_START, AUTH_FAILURE = "1.3.6.1.6.3.1.1.5.1", "1.3.6.1.6.3.1.1.5.2", "1.3.6.1.6.3.1.1.5.5"
SECRETS = ("public", "other", AUTH, PRIV, "wrong-community", "wrong-pass-99")


# ---- real peers ------------------------------------------------------------------------------


class Harness:
    def __init__(self, receiver: TrapReceiver, events: asyncio.Queue[tuple[str, TrapEvent]], env: dict[str, str]) -> None:
        self.receiver, self.events, self.env = receiver, events, env

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.receiver.addresses[0][1]}"

    async def tool(self, *argv: str, timeout: float = 15.0) -> tuple[int, str]:
        """Run a Net-SNMP command (bounded; killed by its PID on timeout); (exit code, stderr)."""
        proc = await asyncio.create_subprocess_exec(*argv, env=self.env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"{argv[0]} did not finish in {timeout}s") from None
        return proc.returncode or 0, err.decode(errors="replace")

    async def next_event(self, timeout: float = 5.0) -> tuple[str, TrapEvent]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def counted(self, key: str, at_least: int = 1, timeout: float = 5.0) -> None:
        """Wait (bounded) until ``stats[key]`` reaches ``at_least``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.receiver.stats[key] < at_least:
            if loop.time() > deadline:
                raise AssertionError(f"stats[{key!r}] stayed {self.receiver.stats[key]} (< {at_least}): {self.receiver.stats}")
            await asyncio.sleep(0.02)


def v3_args(*, engine: str | None = ENGINE, auth: str = AUTH, level: str = "authPriv", a: str = "SHA",
            x: str = "AES", user: str = "v3sha") -> list[str]:
    args = ["-v", "3", "-u", user, "-l", level, "-a", a, "-A", auth]
    if level == "authPriv":
        args += ["-x", x, "-X", PRIV]
    return args + (["-e", f"0x{engine}"] if engine else [])


@pytest.fixture
def snmp_env(tmp_path: Path) -> dict[str, str]:
    # no MIB files (numeric OIDs), no persistent state or config outside this test's directory
    return {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(tmp_path), "SNMPCONFPATH": str(tmp_path), "HOME": str(tmp_path)}


@pytest.fixture
async def harness(snmp_env: dict[str, str]) -> AsyncIterator[Harness]:
    events: asyncio.Queue[tuple[str, TrapEvent]] = asyncio.Queue()

    async def on_trap(asset: str, event: TrapEvent) -> None:
        await events.put((asset, event))

    sources = {
        "127.0.0.1": TrapSource(
            "switch-01", {"switch_community": "public"},
            users=(TrapUser("v3sha", "SHA", AUTH, "AES", PRIV), TrapUser("v3sha256", "SHA256", AUTH, "AES256", PRIV)),
            engine_id=bytes.fromhex(ENGINE),
        ),
        "127.0.0.2": TrapSource("switch-02", {"other_community": "other"}),
    }
    receiver = TrapReceiver(sources, on_trap, host="127.0.0.1", port=0)
    await receiver.start()
    try:
        yield Harness(receiver, events, snmp_env)
    finally:
        await receiver.stop()


def trap(h: Harness, *args: str, oid: str = LINK_DOWN, index: int = 2) -> list[str]:
    return ["snmptrap", *args, h.target, "", oid, f"{IF_INDEX}.{index}", "i", str(index)]


def inform(h: Harness, *args: str, oid: str = LINK_UP, index: int = 4) -> list[str]:
    return ["snmpinform", "-t", "2", "-r", "1", *args, h.target, "", oid, f"{IF_INDEX}.{index}", "i", str(index)]


peers = pytest.mark.peers


@peers
async def test_v2c_trap_arrives_as_link_down_with_its_interface(harness: Harness) -> None:
    assert (await harness.tool(*trap(harness, "-v", "2c", "-c", "public")))[0] == 0
    asset, event = await harness.next_event()
    assert asset == "switch-01"
    assert (event.version, event.trap_oid, event.kind, event.if_index) == ("2c", LINK_DOWN, TrapKind.LINK_DOWN, 2)
    assert event.source == "127.0.0.1" and event.source_port > 0 and not event.inform
    assert event.principal == "switch_community"  # the community's label, never the community
    assert event.varbinds == ((f"{IF_INDEX}.2", "2"),)
    assert event.uptime is not None and event.engine_id is None
    assert "public" not in repr(event)
    assert harness.receiver.stats["accepted"] == 1


@peers
async def test_v1_generic_trap_becomes_its_v2_oid(harness: Harness) -> None:
    # snmptrap -v 1 AGENT ENTERPRISE AGENT-ADDR GENERIC SPECIFIC UPTIME: generic 2 is linkDown
    argv = ["snmptrap", "-v", "1", "-c", "public", harness.target, "", "", "2", "0", "", f"{IF_INDEX}.3", "i", "3"]
    assert (await harness.tool(*argv))[0] == 0
    _, event = await harness.next_event()
    assert (event.version, event.trap_oid, event.kind, event.if_index) == ("1", LINK_DOWN, TrapKind.LINK_DOWN, 3)
    assert all(value != "public" for _, value in event.varbinds)  # RFC 3584's snmpTrapCommunity.0 is dropped


@peers
async def test_v1_enterprise_specific_trap_becomes_enterprise_0_specific(harness: Harness) -> None:
    argv = ["snmptrap", "-v", "1", "-c", "public", harness.target, "1.3.6.1.4.1.8072.9999", "", "6", "17", "",
            "1.3.6.1.4.1.8072.9999.1.0", "s", "fan tray 2 failed"]
    assert (await harness.tool(*argv))[0] == 0
    _, event = await harness.next_event()
    assert (event.trap_oid, event.kind, event.if_index) == ("1.3.6.1.4.1.8072.9999.0.17", TrapKind.OTHER, None)
    assert ("1.3.6.1.4.1.8072.9999.1.0", "fan tray 2 failed") in event.varbinds


@peers
async def test_v2c_inform_is_acknowledged_and_delivered(harness: Harness) -> None:
    code, err = await harness.tool(*inform(harness, "-v", "2c", "-c", "public"))
    assert code == 0, err  # snmpinform exits 0 only when the receiver acknowledged
    _, event = await harness.next_event()
    assert (event.version, event.kind, event.if_index, event.inform) == ("2c", TrapKind.LINK_UP, 4, True)


@peers
@pytest.mark.parametrize(("user", "auth", "priv"), [("v3sha", "SHA", "AES"), ("v3sha256", "SHA-256", "AES-256")])
async def test_v3_trap_authenticates_with_the_senders_engine_id(harness: Harness, user: str, auth: str, priv: str) -> None:
    code, err = await harness.tool(*trap(harness, *v3_args(user=user, a=auth, x=priv), index=5))
    assert code == 0, err
    asset, event = await harness.next_event()
    assert asset == "switch-01"
    assert (event.version, event.principal, event.kind, event.if_index) == ("3", user, TrapKind.LINK_DOWN, 5)
    assert event.engine_id == ENGINE and not event.inform


@peers
async def test_v3_inform_discovers_the_receivers_engine_id(harness: Harness) -> None:
    code, err = await harness.tool(*inform(harness, *v3_args(engine=None), index=6))
    assert code == 0, err
    _, event = await harness.next_event()
    assert (event.version, event.principal, event.kind, event.if_index, event.inform) == ("3", "v3sha", TrapKind.LINK_UP, 6, True)
    assert event.engine_id == harness.receiver.engine_id.hex()
    assert harness.receiver.stats["discovery"] >= 1


@peers
async def test_wrong_community_is_counted_and_not_delivered(harness: Harness) -> None:
    with capture_logs() as logs:
        await harness.tool(*trap(harness, "-v", "2c", "-c", "wrong-community"))
        await harness.counted("bad_auth")
    assert harness.receiver.stats["accepted"] == 0 and harness.events.empty()
    assert [entry["reason"] for entry in logs if entry["event"] == "trap_bad_auth"] == ["unknown community"]
    assert not any(secret in repr(logs) for secret in SECRETS)


@peers
async def test_community_of_another_source_is_refused(harness: Harness) -> None:
    # "other" is switch-02's community (127.0.0.2); 127.0.0.1 may not use it
    await harness.tool(*trap(harness, "-v", "2c", "-c", "other"))
    await harness.counted("bad_auth")
    assert harness.receiver.stats["accepted"] == 0 and harness.events.empty()


@peers
async def test_unknown_source_is_counted_and_not_delivered(harness: Harness) -> None:
    with capture_logs() as logs:
        await harness.tool(*trap(harness, "-v", "2c", "-c", "public", "--clientaddr=127.0.0.3"))
        await harness.counted("unknown_source")
    assert harness.receiver.stats["accepted"] == 0 and harness.events.empty()
    assert any(e["event"] == "trap_unknown_source" and e["source"] == "127.0.0.3" for e in logs)


@peers
async def test_known_second_source_is_delivered_as_its_asset(harness: Harness) -> None:
    await harness.tool(*trap(harness, "-v", "2c", "-c", "other", "--clientaddr=127.0.0.2", oid=COLD_START))
    asset, event = await harness.next_event()
    assert (asset, event.source, event.principal, event.kind) == ("switch-02", "127.0.0.2", "other_community", TrapKind.COLD_START)


@peers
async def test_v3_wrong_key_is_bad_auth(harness: Harness) -> None:
    with capture_logs() as logs:
        await harness.tool(*trap(harness, *v3_args(auth="wrong-pass-99")))
        await harness.counted("bad_auth")
    assert harness.events.empty()
    assert "wrong v3 authentication key" in [e.get("reason") for e in logs]
    assert not any(secret in repr(logs) for secret in SECRETS)


@peers
async def test_v3_below_the_users_security_level_is_refused(harness: Harness) -> None:
    await harness.tool(*trap(harness, *v3_args(level="authNoPriv")))  # right key, but no privacy
    await harness.counted("bad_auth")
    assert harness.receiver.stats["accepted"] == 0 and harness.events.empty()


@peers
async def test_v3_trap_from_an_unconfigured_engine_id_is_counted_with_a_hint(harness: Harness) -> None:
    with capture_logs() as logs:
        await harness.tool(*trap(harness, *v3_args(engine="80000000090909")))
        await harness.counted("unknown_engine_id")
    assert harness.events.empty()
    [entry] = [e for e in logs if e["event"] == "trap_unknown_engine_id"]
    assert (entry["engine_id"], entry["user"], entry["asset"]) == ("80000000090909", "v3sha", "switch-01")


@peers
async def test_a_failing_callback_is_counted_and_the_next_trap_still_arrives(snmp_env: dict[str, str]) -> None:
    seen: list[int | None] = []

    async def on_trap(asset: str, event: TrapEvent) -> None:
        seen.append(event.if_index)
        if event.if_index == 1:
            raise RuntimeError("store is down")

    receiver = TrapReceiver({"127.0.0.1": TrapSource("sw", {"c": "public"})}, on_trap, host="127.0.0.1", port=0)
    await receiver.start()
    h = Harness(receiver, asyncio.Queue(), snmp_env)
    try:
        with capture_logs() as logs:
            for index in (1, 2):
                await h.tool(*trap(h, "-v", "2c", "-c", "public", index=index))
            await h.counted("accepted", 2)
        await receiver.stop()  # drains the queue
    finally:
        await receiver.stop()
    assert seen == [1, 2] and receiver.stats["callback_failed"] == 1
    assert any(e["event"] == "trap_callback_failed" for e in logs)


@peers
async def test_ipv6_listener(snmp_env: dict[str, str]) -> None:
    events: asyncio.Queue[tuple[str, TrapEvent]] = asyncio.Queue()

    async def on_trap(asset: str, event: TrapEvent) -> None:
        await events.put((asset, event))

    receiver = TrapReceiver({"::1": TrapSource("core-6", {"c": "public"})}, on_trap, host="127.0.0.1", port=0, host6="::1")
    await receiver.start()
    try:
        port6 = receiver.addresses[1][1]
        h = Harness(receiver, events, snmp_env)
        argv = ["snmptrap", "-v", "2c", "-c", "public", f"udp6:[::1]:{port6}", "", WARM_START]
        assert (await h.tool(*argv))[0] == 0
        asset, event = await h.next_event()
        assert (asset, event.source, event.kind) == ("core-6", "::1", TrapKind.WARM_START)
    finally:
        await receiver.stop()


async def test_a_port_in_use_is_a_trap_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))

        async def on_trap(asset: str, event: TrapEvent) -> None: ...

        receiver = TrapReceiver({}, on_trap, host="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(TrapError, match="cannot listen for traps on 127.0.0.1 port"):
            await receiver.start()


# ---- pure: events, rules, classification -----------------------------------------------------


def event(oid: str, *varbinds: tuple[str, str], at: float = 1000.0) -> TrapEvent:
    return trap_event([("1.3.6.1.2.1.1.3.0", "4242"), ("1.3.6.1.6.3.1.1.4.1.0", oid), *varbinds],
                      received_at=at, source="10.0.0.9", version="2c", principal="sw")


@pytest.mark.parametrize(
    ("oid", "varbinds", "expected"),
    [
        (LINK_DOWN, [(f"{IF_INDEX}.2", "2")], ("trap:" + LINK_DOWN, "ifIndex 2", FaultType.NETWORK, Severity.P3,
                                                "interface ifIndex 2 is down", False)),
        (LINK_UP, [(f"{IF_INDEX}.2", "2")], ("trap:" + LINK_DOWN, "ifIndex 2", FaultType.NETWORK, Severity.P3,
                                              "interface ifIndex 2 is up", True)),
        (COLD_START, [], ("trap:" + COLD_START, "", FaultType.SYSTEM, Severity.P4, "device restarted", False)),
        (WARM_START, [], ("trap:" + WARM_START, "", FaultType.SYSTEM, Severity.P4, "device restarted", False)),
        (AUTH_FAILURE, [], ("trap:" + AUTH_FAILURE, "", FaultType.SECURITY, Severity.P3,
                            "SNMP authentication failure (someone tried a wrong community or key)", False)),
    ],
)
def test_default_classification(oid: str, varbinds: list[tuple[str, str]], expected: tuple[Any, ...]) -> None:
    finding = classify_trap(event(oid, *varbinds), default_trap_rules())
    assert finding is not None
    assert (finding.rule, finding.key, finding.type, finding.severity, finding.summary, finding.clears) == expected
    assert (finding.trap_oid, finding.since) == (oid, 1000.0)


def test_unmapped_trap_is_not_classified() -> None:
    assert classify_trap(event("1.3.6.1.4.1.9.9.43.2.0.1"), default_trap_rules()) is None
    assert classify_trap(event(LINK_DOWN), {}) is None


def test_link_up_clears_the_link_down_of_the_same_interface() -> None:
    rules = default_trap_rules()
    down = classify_trap(event(LINK_DOWN, (f"{IF_INDEX}.7", "7")), rules)
    up = classify_trap(event(LINK_UP, (f"{IF_INDEX}.7", "7")), rules)
    assert down is not None and up is not None and up.clears and not down.clears
    assert down.as_finding("sw-01").fingerprint == up.as_finding("sw-01").fingerprint == f"trap:{LINK_DOWN}|sw-01|ifIndex 7"


def test_the_summary_names_the_interface_by_its_name_when_the_trap_gives_it() -> None:
    named = event(LINK_DOWN, (f"{IF_INDEX}.3", "3"), ("1.3.6.1.2.1.2.2.1.2.3", "GigabitEthernet0/3"))
    finding = classify_trap(named, default_trap_rules())
    assert finding is not None and finding.summary == "interface GigabitEthernet0/3 is down"
    assert (named.if_descr, named.if_name) == ("GigabitEthernet0/3", None)
    with_name = event(LINK_DOWN, (f"{IF_INDEX}.3", "3"), ("1.3.6.1.2.1.31.1.1.1.1.3", "Gi0/3"))
    assert with_name.if_name == "Gi0/3" and with_name.interface == "Gi0/3"


def test_event_fields_from_varbinds() -> None:
    e = event(LINK_DOWN, ("1.3.6.1.2.1.2.2.1.7.9", "1"), ("1.3.6.1.2.1.2.2.1.8.9", "2"))
    assert (e.kind, e.if_index, e.uptime) == (TrapKind.LINK_DOWN, 9, 4242)  # no ifIndex varbind: the instance
    assert e.varbinds == (("1.3.6.1.2.1.2.2.1.7.9", "1"), ("1.3.6.1.2.1.2.2.1.8.9", "2"))
    assert event("1.3.6.1.4.1.9.0.1").kind == TrapKind.OTHER and event("1.3.6.1.4.1.9.0.1").if_index is None


def test_config_maps_any_oid_and_overrides_a_default() -> None:
    raw = [
        {"oid": "1.3.6.1.4.1.8072.9999.0.17", "type": "hardware", "severity": "P2", "summary": "fan failed ({oid} from {source})"},
        {"oid": LINK_DOWN, "type": "network", "severity": "p2", "summary": "uplink {if} down"},
    ]
    rules = default_trap_rules() | {r.oid: r for r in msgspec.convert(raw, list[TrapRule])}
    fan = classify_trap(event("1.3.6.1.4.1.8072.9999.0.17"), rules)
    assert fan is not None and (fan.type, fan.severity) == (FaultType.HARDWARE, Severity.P2)
    assert fan.summary == "fan failed (1.3.6.1.4.1.8072.9999.0.17 from 10.0.0.9)"
    down = classify_trap(event(LINK_DOWN, (f"{IF_INDEX}.1", "1")), rules)
    assert down is not None and (down.severity, down.summary) == (Severity.P2, "uplink ifIndex 1 down")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"oid": LINK_DOWN, "type": "network", "severity": "P9", "summary": "x"}, "unknown severity 'P9'"),
        ({"oid": LINK_DOWN, "type": "network", "severity": "P3", "summary": "{interface} down"}, "unknown field {interface}"),
        ({"oid": "linkDown", "type": "network", "severity": "P3", "summary": "x"}, "$.oid"),
        ({"oid": LINK_DOWN, "type": "weather", "severity": "P3", "summary": "x"}, "$.type"),
        ({"oid": LINK_DOWN, "type": "network", "severity": "P3", "summary": "x", "colour": 1}, "colour"),
    ],
)
def test_bad_rule_config_names_the_problem(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message.replace("{", r"\{").replace("$", r"\$")):
        msgspec.convert(entry, TrapRule)
