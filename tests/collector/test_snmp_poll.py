"""Polling a real Net-SNMP snmpd: v2c and v3 users, the real interface table of this namespace,
and the failures a school's IT office meets (wrong community, wrong key, wrong AES variant,
security level below what the device requires, an agent restart).

snmpd runs from a config written here, on 127.0.0.1 and a free UDP port, and is stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from collector.network.config import SnmpConfig
from collector.network.snmp import (
    Credentials,
    PollResult,
    PollState,
    SnmpAuthenticationError,
    SnmpAuthorizationError,
    SnmpTimeout,
    poll,
)
from collector.network.snmp_poller import SnmpPoller, SnmpTarget
from schoolops.units import Seconds
from tests.support import free_udp_port

pytestmark = pytest.mark.peers

SNMPD = "/usr/sbin/snmpd"
USERS = {  # name: (auth protocol, auth key, priv protocol, priv key) as snmpd.conf spells them
    "v3sha": ("SHA", "authpass-123", "AES", "privpass-123"),
    "v3sha256": ("SHA-256", "authpass-256", "AES-256", "privpass-256"),
    "v3sha1aes256": ("SHA", "authpass-1aes", "AES-256", "privpass-1aes"),  # AES-256 key extension matters here
}


class Snmpd:
    """A Net-SNMP agent started from our own config, stopped by PID."""

    def __init__(self, directory: Path, engine_id: str = "schoolops-test-snmpd",
                 users: dict[str, tuple[str, str, str, str]] = USERS) -> None:
        self.dir = directory
        self.port = free_udp_port()
        self.conf = directory / "snmpd.conf"
        self.log = directory / "snmpd.log"
        (directory / "persist").mkdir(exist_ok=True)
        users = "".join(f'createUser {u} {a} "{ak}" {p} "{pk}"\nrouser {u} priv\n'
                        for u, (a, ak, p, pk) in users.items())
        self.conf.write_text(
            f"agentAddress udp:127.0.0.1:{self.port}\n"
            f"engineID {engine_id}\n"
            "rocommunity public 127.0.0.1\n"
            f"{users}"
            "dontLogTCPWrappersConnects yes\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Snmpd:
        self.log.write_text("")
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.dir / "persist"), "MIBS": ""}
        self.process = subprocess.Popen(
            [SNMPD, "-f", "-C", "-c", str(self.conf), "-Lf", str(self.log), "-p", str(self.dir / "snmpd.pid"),
             "-m", "", "-I", "-smux"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while "NET-SNMP version" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"snmpd did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    agent = Snmpd(tmp_path_factory.mktemp("snmpd")).start()
    yield agent
    agent.stop()


@pytest.fixture
async def engine() -> AsyncIterator[SnmpEngine]:
    snmp_engine = SnmpEngine()  # one per event loop: pytest-asyncio gives each test its own
    yield snmp_engine
    snmp_engine.close_dispatcher()


def v2c(port: int) -> SnmpConfig:
    return SnmpConfig(version="2c", port=port, community_secret="snmp.community", timeout=Seconds(0.5), retries=0)


def v3(port: int, user: str, auth: str, priv: str, aes_variant: str = "blumenthal") -> SnmpConfig:
    return SnmpConfig(version="3", port=port, user=user, auth=auth, auth_secret=f"snmp.{user}.auth", priv=priv,
                      priv_secret=None if priv == "none" else f"snmp.{user}.priv", aes_variant=aes_variant,
                      timeout=Seconds(0.5), retries=0)


async def poll_v3(engine: SnmpEngine, port: int, user: str, auth: str, auth_key: str, priv: str = "none",
                  priv_key: str | None = None, aes_variant: str = "blumenthal") -> PollResult:
    secrets = {f"snmp.{user}.auth": auth_key, f"snmp.{user}.priv": priv_key or ""}
    config = v3(port, user, auth, priv, aes_variant)
    creds = Credentials.from_config(config, secrets.__getitem__)
    return await poll(engine, "127.0.0.1", config, creds, None, time.time())


def make_traffic_on_lo(bytes_total: int = 2_000_000) -> None:
    udp = (socket.AF_INET, socket.SOCK_DGRAM)
    with socket.socket(*udp) as sink, socket.socket(*udp) as src:
        sink.bind(("127.0.0.1", 0))
        chunk = b"x" * 60_000
        for _ in range(bytes_total // len(chunk)):
            src.sendto(chunk, sink.getsockname())


def test_credentials_refuse_what_no_device_would_accept() -> None:
    with pytest.raises(ValueError, match="auth_key: .* at least 8 characters"):
        Credentials(user="v3sha", auth_protocol="SHA", auth_key="short")
    with pytest.raises(ValueError, match="community .* or a user"):
        Credentials(community="public", user="v3sha")
    with pytest.raises(ValueError, match="priv_key"):
        Credentials(user="v3sha", priv_protocol="AES", priv_key="privpass-123")
    assert "privpass" not in repr(Credentials(user="u", auth_protocol="SHA", auth_key="authpass-1",
                                              priv_protocol="AES", priv_key="privpass-1"))


async def test_v2c_poll_reads_system_group_and_real_interfaces_with_rates(snmpd: Snmpd, engine: SnmpEngine) -> None:
    config = v2c(snmpd.port)
    creds = Credentials(community="public")
    first = await poll(engine, "127.0.0.1", config, creds, None, time.time())

    assert first.error is None and first.device.reachable, first.device.error
    assert first.device.sys_name == socket.gethostname()
    assert first.device.sys_object_id.startswith("1.3.6.1.4.1.8072.")  # Net-SNMP's enterprise
    assert first.device.uptime_seconds is not None and not first.device.rebooted
    lo = next(i for i in first.interfaces if i.name == "lo")
    assert lo.in_octets > 0 and lo.in_bps is None  # no previous sample yet
    assert any(fs.mountpoint == "/" and fs.size > 0 for fs in first.storage), first.storage

    make_traffic_on_lo()
    time.sleep(3.2)  # snmpd caches its interface table for ~3 s
    second = await poll(engine, "127.0.0.1", config, creds, first.state, time.time())

    lo2 = next(i for i in second.interfaces if i.name == "lo")
    assert lo2.in_octets > lo.in_octets + 1_000_000  # read from the 64-bit ifHCInOctets
    assert lo2.in_bps is not None and lo2.in_bps > 1_000_000
    assert lo2.utilisation is not None and lo2.speed_bps > 0
    assert not second.device.rebooted


@pytest.mark.parametrize(("user", "auth", "priv"), [("v3sha", "SHA", "AES"), ("v3sha256", "SHA256", "AES256")])
async def test_v3_users_with_auth_and_privacy(snmpd: Snmpd, engine: SnmpEngine, user: str, auth: str,
                                              priv: str) -> None:
    _, auth_key, _, priv_key = USERS[user]
    result = await poll_v3(engine, snmpd.port, user, auth, auth_key, priv, priv_key)
    assert result.error is None, result.device.error
    assert result.device.sys_name == socket.gethostname()
    assert any(i.name == "lo" for i in result.interfaces)


async def test_aes256_key_extension_variant_must_match_the_device(snmpd: Snmpd, engine: SnmpEngine) -> None:
    _, auth_key, _, priv_key = USERS["v3sha1aes256"]
    ok = await poll_v3(engine, snmpd.port, "v3sha1aes256", "SHA", auth_key, "AES256", priv_key, "blumenthal")
    assert ok.error is None, ok.device.error  # Net-SNMP extends the key the Blumenthal way

    reeder_engine = SnmpEngine()  # a fresh engine: pysnmp keeps keys it localized per device
    try:
        wrong = await poll_v3(reeder_engine, snmpd.port, "v3sha1aes256", "SHA", auth_key, "AES256", priv_key, "reeder")
    finally:
        reeder_engine.close_dispatcher()
    assert isinstance(wrong.error, SnmpTimeout)
    assert "aes_variant" in (wrong.device.error or "")


async def test_wrong_community_is_silence_reported_as_unreachable(snmpd: Snmpd, engine: SnmpEngine) -> None:
    result = await poll(engine, "127.0.0.1", v2c(snmpd.port), Credentials(community="not-the-community"), None,
                        time.time())
    assert isinstance(result.error, SnmpTimeout) and result.result == "timeout"
    assert result.device.reachable is False
    assert "community" in (result.device.error or "") and "no answer" in (result.device.error or "")
    assert f"127.0.0.1:{snmpd.port}" in (result.device.error or "")
    assert result.interfaces == [] and result.storage == [] and result.temperatures == []


async def test_wrong_v3_auth_key_is_an_authentication_failure(snmpd: Snmpd, engine: SnmpEngine) -> None:
    result = await poll_v3(engine, snmpd.port, "v3sha", "SHA", "not-the-key-1", "AES", USERS["v3sha"][3])
    assert isinstance(result.error, SnmpAuthenticationError) and result.result == "auth_failure"
    assert result.device.reachable is False
    assert "authentication failure" in (result.device.error or "")
    assert "snmp.v3sha.auth" in (result.device.error or "")  # names the secret to check, never the key
    assert "not-the-key-1" not in (result.device.error or "")


async def test_unknown_v3_user_is_an_authentication_failure(snmpd: Snmpd, engine: SnmpEngine) -> None:
    result = await poll_v3(engine, snmpd.port, "nobody-here", "SHA", "whatever-123")
    assert isinstance(result.error, SnmpAuthenticationError)
    assert "nobody-here" in (result.device.error or "")


async def test_security_level_below_what_the_user_requires_is_an_authorization_error(
        snmpd: Snmpd, engine: SnmpEngine) -> None:
    result = await poll_v3(engine, snmpd.port, "v3sha", "SHA", USERS["v3sha"][1])  # authNoPriv for a `priv` user
    assert isinstance(result.error, SnmpAuthorizationError) and result.result == "access_denied"
    assert "security level" in (result.device.error or "")


async def test_agent_restart_is_a_reboot_without_a_rate_spike(tmp_path: Path, engine: SnmpEngine) -> None:
    agent = Snmpd(tmp_path).start()
    try:
        config, creds = v2c(agent.port), Credentials(community="public")
        time.sleep(1.0)  # let sysUpTime grow, so the restart sends it back
        first = await poll(engine, "127.0.0.1", config, creds, None, time.time())
        assert first.error is None, first.device.error
        agent.stop()
        agent.start()
        second = await poll(engine, "127.0.0.1", config, creds, first.state, time.time())
    finally:
        agent.stop()
    assert second.error is None, second.device.error
    assert second.device.rebooted
    assert second.interfaces and all(i.in_bps is None and i.out_bps is None for i in second.interfaces)
    assert isinstance(second.state, PollState) and second.state.uptime is not None


async def test_same_v3_user_name_with_different_keys_on_two_devices(tmp_path: Path) -> None:
    """pysnmp keys USM users by name: the poller must not let one device's keys replace another's."""
    keys = {"a": ("authpass-aaa1", "privpass-aaa1"), "b": ("authpass-bbb2", "privpass-bbb2")}
    agents = [Snmpd(tmp_path / n, f"schoolops-test-{n}", {"monitor": ("SHA", k[0], "AES", k[1])})
              for n, k in keys.items() if (tmp_path / n).mkdir() is None]
    poller = SnmpPoller()
    try:
        for agent in agents:
            agent.start()
        targets = [SnmpTarget(asset=f"switch-{n}", address="127.0.0.1", config=v3(agent.port, "monitor", "SHA", "AES"),
                              credentials=Credentials(user="monitor", auth_protocol="SHA", auth_key=k[0],
                                                      priv_protocol="AES", priv_key=k[1]))
                   for (n, k), agent in zip(keys.items(), agents, strict=True)]
        rounds = [await poller.poll_once(targets) for _ in range(3)]
    finally:
        poller.close()
        for agent in agents:
            agent.stop()
    assert [{a: r.result for a, r in results.items()} for results in rounds] == \
        [{"switch-a": "ok", "switch-b": "ok"}] * 3
