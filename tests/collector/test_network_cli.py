"""The read-only network CLI against real SSH servers: OpenSSH's sshd (netmiko ``linux``) and the
fake Cisco switch (netmiko ``cisco_ios``, parsed by ntc-templates). Host keys are always checked."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.network.cli import (
    COMMAND_SETS,
    CliAuthFailed,
    CliError,
    CliUnreachable,
    HostKeyRejected,
    run_commands,
)
from collector.network.config import CliConfig
from schoolops.units import Seconds
from tests.fake_cli_device import FakeDeviceServer
from tests.support import free_port

pytestmark = pytest.mark.timeout(60)


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path``; returns the public key line (type and base64)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True, timeout=10)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


@dataclass
class Sshd:
    port: int
    host_key: str  # "ssh-ed25519 AAAA…"
    client_key: Path
    tmp: Path

    def known_hosts(self, key: str | None = None, name: str = "known_hosts") -> Path:
        path = self.tmp / name
        path.write_text(f"[127.0.0.1]:{self.port} {key or self.host_key}\n" if key != "" else "")
        return path

    def config(self, known_hosts: Path, **overrides: object) -> CliConfig:
        fields: dict[str, object] = {"device_type": "linux", "username": getpass.getuser(),
                                     "known_hosts": str(known_hosts), "port": self.port,
                                     "key_file": str(self.client_key), "timeout": Seconds(10)}
        return CliConfig(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real OpenSSH sshd on 127.0.0.1 that accepts one key the test made; stopped by its handle."""
    if not Path("/usr/sbin/sshd").exists():
        pytest.skip("openssh-server missing: run scripts/test.sh")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    host_key = keygen(tmp_path / "host_key")
    client_public = keygen(tmp_path / "client_key")
    (tmp_path / "authorized_keys").write_text(client_public + "\n")
    port = free_port()
    conf = tmp_path / "sshd_config"
    conf.write_text(f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {tmp_path / 'host_key'}
PidFile {tmp_path / 'sshd.pid'}
AuthorizedKeysFile {tmp_path / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
""")
    log = (tmp_path / "sshd.log").open("w")
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"sshd did not start: {(tmp_path / 'sshd.log').read_text()}") from None
                time.sleep(0.05)
        yield Sshd(port, host_key, tmp_path / "client_key", tmp_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


@pytest.mark.peers
async def test_linux_version_over_real_sshd(sshd: Sshd) -> None:
    config = sshd.config(sshd.known_hosts())
    out = await run_commands("127.0.0.1", config, None, None, ["version", "interfaces"], semaphore=asyncio.Semaphore(2))
    assert out["version"].command == "uname -a"
    assert out["version"].raw.strip().startswith("Linux ")
    assert os.uname().release in out["version"].raw
    assert out["interfaces"].parsed is not None  # ntc-templates' linux `ip link show`
    assert "lo" in {row["interface"] for row in out["interfaces"].parsed}


@pytest.mark.peers
async def test_changed_host_key_is_rejected_with_a_clear_message(sshd: Sshd) -> None:
    other = keygen(sshd.tmp / "impostor_key")
    known_hosts = sshd.known_hosts(other)
    with pytest.raises(HostKeyRejected) as caught:
        await run_commands("127.0.0.1", sshd.config(known_hosts), None, None, ["version"], semaphore=asyncio.Semaphore(1))
    message = str(caught.value)
    assert f"127.0.0.1:{sshd.port}" in message
    assert f"does not match known_hosts {known_hosts}" in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in message  # how to update it
    assert caught.value.permanent


@pytest.mark.peers
async def test_unknown_host_is_rejected(sshd: Sshd) -> None:
    known_hosts = sshd.known_hosts("")
    with pytest.raises(HostKeyRejected, match="not in known_hosts") as caught:
        await run_commands("127.0.0.1", sshd.config(known_hosts), None, None, ["version"], semaphore=asyncio.Semaphore(1))
    assert "ssh-keyscan" in str(caught.value)


@pytest.mark.peers
async def test_missing_known_hosts_file_is_rejected_before_connecting(sshd: Sshd) -> None:
    config = sshd.config(sshd.tmp / "no-such-file")
    with pytest.raises(HostKeyRejected, match="does not exist"):
        await run_commands("127.0.0.1", config, None, None, ["version"], semaphore=asyncio.Semaphore(1))


@pytest.mark.peers
async def test_a_key_the_server_does_not_know_is_an_auth_failure(sshd: Sshd) -> None:
    keygen(sshd.tmp / "stranger_key")
    config = sshd.config(sshd.known_hosts(), key_file=str(sshd.tmp / "stranger_key"))
    with pytest.raises(CliAuthFailed):
        await run_commands("127.0.0.1", config, None, None, ["version"], semaphore=asyncio.Semaphore(1))


async def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = CliConfig(device_type="cisco_ios", username="netops", known_hosts=str(known_hosts), port=free_port(),
                       password_secret="sw.password", timeout=Seconds(3))
    with pytest.raises(CliUnreachable):
        await run_commands("127.0.0.1", config, "pw", None, ["version"], semaphore=asyncio.Semaphore(1))


def test_unknown_purpose_is_refused_before_any_connection(tmp_path: Path) -> None:
    config = CliConfig(device_type="huawei", username="netops", known_hosts=str(tmp_path / "kh"),
                       password_secret="sw.password")
    with pytest.raises(ValueError, match="huawei has no command for reboot"):
        asyncio.run(run_commands("127.0.0.1", config, "pw", None, ["reboot"], semaphore=asyncio.Semaphore(1)))


def test_every_command_is_read_only() -> None:
    for device_type, table in COMMAND_SETS.items():
        for purpose, command in table.items():
            assert command.split()[0] in ("show", "display", "uname", "ip", "cat", "journalctl"), (device_type, purpose)
    assert COMMAND_SETS["cisco_ios"]["config"] == "show running-config"
    assert COMMAND_SETS["huawei"]["config"] == "display current-configuration"


# -- the fake Cisco switch ---------------------------------------------------------------------------

async def test_cisco_show_commands_parsed_by_ntc_templates(switch: tuple[FakeDeviceServer, CliConfig]) -> None:
    server, config = switch
    device = server.device
    out = await run_commands("127.0.0.1", config, device.password, device.enable_secret,
                             ["version", "interfaces", "config"], semaphore=asyncio.Semaphore(2))
    assert out["version"].parsed is not None
    [version] = out["version"].parsed
    assert version["hostname"] == "sw-lab-1"
    assert version["version"] == "15.2(7)E7"
    assert version["hardware"] == ["WS-C2960X-24TS-L"]

    assert out["interfaces"].parsed is not None
    links = {row["interface"]: (row["link_status"], row["protocol_status"]) for row in out["interfaces"].parsed}
    assert links == {
        "GigabitEthernet1/0/1": ("up", "up (connected)"),
        "GigabitEthernet1/0/2": ("up", "up (connected)"),
        "GigabitEthernet1/0/3": ("down", "down (notconnect)"),
        "Vlan1": ("up", "up"),
    }
    config_text = out["config"].raw
    assert out["config"].parsed is None
    assert "hostname sw-lab-1" in config_text and config_text.rstrip().endswith("end")
    assert "! Last configuration change at" in config_text
    # only session set-up and the read-only commands reached the device; the secret never shows
    assert device.commands[:6] == ["terminal width 511", "terminal length 0", "enable",
                                   "show version", "show interfaces", "show running-config"]
    assert device.commands[6:] in ([], ["exit"])  # netmiko's goodbye may still be on its way


async def test_running_config_needs_enable(switch: tuple[FakeDeviceServer, CliConfig]) -> None:
    server, config = switch
    out = await run_commands("127.0.0.1", config, server.device.password, None, ["config"],
                             semaphore=asyncio.Semaphore(1))
    assert "% Invalid input detected" in out["config"].raw


async def test_wrong_enable_secret_is_an_auth_failure(switch: tuple[FakeDeviceServer, CliConfig]) -> None:
    server, config = switch
    with pytest.raises(CliAuthFailed, match="enable secret was refused") as caught:
        await run_commands("127.0.0.1", config, server.device.password, "not-the-secret", ["version"],
                           semaphore=asyncio.Semaphore(1))
    assert "not-the-secret" not in str(caught.value)


async def test_wrong_password_is_an_auth_failure(switch: tuple[FakeDeviceServer, CliConfig]) -> None:
    _, config = switch
    with pytest.raises(CliAuthFailed) as caught:
        await run_commands("127.0.0.1", config, "wrong-password", None, ["version"], semaphore=asyncio.Semaphore(1))
    assert "wrong-password" not in str(caught.value)
    assert isinstance(caught.value, CliError)

