"""The network primitives of a runbook's ``cli`` and ``snmp_get`` steps, against the fake Cisco
switch (configuration really changed, host keys checked) and a real Net-SNMP snmpd."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh
import pytest
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from collector.network.cli import CliAuthFailed, CliUnreachable, HostKeyRejected
from collector.network.config import CliConfig
from collector.network.snmp import Credentials, SnmpTimeout, get_values
from collector.runbooks.netcli import CliRun, check_commands, run_cli, truncate
from schoolops.units import Seconds
from tests.collector.test_snmp_poll import Snmpd, v2c
from tests.fake_cli_device import FakeDeviceServer
from tests.support import free_port

pytestmark = pytest.mark.timeout(60)

Switch = tuple[FakeDeviceServer, CliConfig]
PORT = "GigabitEthernet1/0/5"


def section(server: FakeDeviceServer, header: str) -> list[str] | None:
    """The lines under ``header`` in the switch's running configuration (None: no such section)."""
    return next((block[1:] for block in server.device.blocks() if block[0] == header), None)


def sent(server: FakeDeviceServer) -> list[str]:
    """The command lines the switch received, without netmiko's session set-up and goodbye."""
    return [c for c in server.device.commands if c not in ("terminal width 511", "terminal length 0", "enable", "exit")]


async def cli(switch: Switch, commands: list[str], *, config_mode: bool = False, enable: bool = True,
              password: str | None = None, max_output: int = 16000) -> CliRun:
    server, config = switch
    device = server.device
    return await run_cli("127.0.0.1", config, password or device.password, device.enable_secret if enable else None,
                         commands, config_mode=config_mode, timeout=20, semaphore=asyncio.Semaphore(1),
                         max_output=max_output)


# -- cli ---------------------------------------------------------------------------------------------

async def test_config_mode_shuts_a_port_and_brings_it_back(switch: Switch) -> None:
    server, _ = switch
    assert section(server, f"interface {PORT}") is None

    run = await cli(switch, [f"interface {PORT}", "shutdown"], config_mode=True)

    assert section(server, f"interface {PORT}") == [" shutdown"]
    assert run.commands == (f"interface {PORT}", "shutdown")
    assert run.duration > 0
    # the transcript: prompts and echoed commands as the device printed them, config mode left again
    assert run.output.startswith("sw-lab-1#configure terminal")
    assert f"sw-lab-1(config)#interface {PORT}\nsw-lab-1(config-if)#shutdown\n" in run.output
    assert run.output.rstrip().endswith("sw-lab-1#")
    assert sent(server) == ["configure terminal", f"interface {PORT}", "shutdown", "end"]
    assert server.device.last_change_by == server.device.username  # stamped by the session's user, as IOS does

    shown = await cli(switch, ["show running-config"])
    assert f"interface {PORT}\n shutdown\n" in shown.output

    await cli(switch, [f"interface {PORT}", "no shutdown"], config_mode=True)
    assert section(server, f"interface {PORT}") == []
    shown = await cli(switch, ["show running-config"])
    assert f"interface {PORT}\n!" in shown.output and f"interface {PORT}\n shutdown" not in shown.output


async def test_show_commands_return_the_device_output(switch: Switch) -> None:
    server, _ = switch
    run = await cli(switch, ["show version", "show clock"], enable=False)
    assert run.commands == ("show version", "show clock")
    assert run.output.startswith("sw-lab-1>show version\nCisco IOS Software, C2960X Software")
    assert "Configuration register is 0xF" in run.output
    assert "\nsw-lab-1>show clock\n*" in run.output and run.output.endswith("sw-lab-1>")
    assert "configure terminal" not in server.device.commands and "enable" not in server.device.commands


async def test_show_commands_after_enable(switch: Switch) -> None:
    server, _ = switch
    run = await cli(switch, ["show running-config"])
    assert run.output.startswith("sw-lab-1#show running-config\nBuilding configuration...")
    assert "hostname sw-lab-1" in run.output
    assert server.device.enable_secret not in run.output
    assert server.device.enable_secret not in server.device.commands


async def test_long_output_keeps_head_and_tail(switch: Switch) -> None:
    run = await cli(switch, ["show running-config"], max_output=600)
    assert len(run.output) <= 600
    assert run.output.startswith("sw-lab-1#show running-config\n")
    assert run.output.endswith("end\n\nsw-lab-1#")
    assert "characters cut …]" in run.output


async def test_config_mode_without_enable_secret_is_refused_by_the_device(switch: Switch) -> None:
    server, _ = switch
    with pytest.raises(CliAuthFailed, match="no enable secret is configured"):
        await cli(switch, [f"interface {PORT}", "shutdown"], config_mode=True, enable=False)
    assert section(server, f"interface {PORT}") is None
    assert "configure terminal" not in server.device.commands


async def test_changed_host_key_is_rejected_before_any_command(switch: Switch, tmp_path: Path) -> None:
    server, config = switch
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    known_hosts = tmp_path / "known_hosts_changed"
    known_hosts.write_text(f"[127.0.0.1]:{server.port} {impostor[0]} {impostor[1]}\n")
    changed = CliConfig(device_type=config.device_type, username=config.username, known_hosts=str(known_hosts),
                        port=config.port, password_secret=config.password_secret, timeout=Seconds(10))

    with pytest.raises(HostKeyRejected) as caught:
        await run_cli("127.0.0.1", changed, server.device.password, server.device.enable_secret,
                      [f"interface {PORT}", "shutdown"], config_mode=True, timeout=10, semaphore=asyncio.Semaphore(1))

    message = str(caught.value)
    assert f"does not match known_hosts {known_hosts}" in message
    assert caught.value.permanent
    assert server.device.password not in message and server.device.enable_secret not in message
    assert server.device.commands == []
    assert section(server, f"interface {PORT}") is None


@pytest.mark.parametrize("bad", ["shutdown\nreload", "shutdown\r", "description a\tb", "show clock\x1b[A", ""])
async def test_a_command_with_control_characters_is_refused_before_connecting(switch: Switch, bad: str) -> None:
    server, config = switch
    with pytest.raises(ValueError, match=r"commands\[1\]"):
        await cli(switch, [f"interface {PORT}", bad], config_mode=True)
    assert server.device.commands == []
    # nothing listening there: had it connected, this would be CliUnreachable
    elsewhere = CliConfig(device_type="cisco_ios", username="netops", known_hosts=config.known_hosts,
                          port=free_port(), password_secret="sw.password", timeout=Seconds(3))
    with pytest.raises(ValueError):
        await run_cli("127.0.0.1", elsewhere, "pw", None, ["show clock", bad], config_mode=False, timeout=3,
                      semaphore=asyncio.Semaphore(1))


async def test_nothing_listening_is_unreachable(switch: Switch) -> None:
    _, config = switch
    elsewhere = CliConfig(device_type="cisco_ios", username="netops", known_hosts=config.known_hosts,
                          port=free_port(), password_secret="sw.password", timeout=Seconds(3))
    with pytest.raises(CliUnreachable):
        await run_cli("127.0.0.1", elsewhere, "pw", None, ["show clock"], config_mode=False, timeout=3,
                      semaphore=asyncio.Semaphore(1))


async def test_wrong_password_is_an_auth_failure_without_the_password(switch: Switch) -> None:
    server, _ = switch
    with pytest.raises(CliAuthFailed) as caught:
        await cli(switch, ["show clock"], password="wrong-password-7")
    assert "wrong-password-7" not in str(caught.value)
    assert server.device.enable_secret not in str(caught.value)
    assert server.device.commands == []


def test_check_commands() -> None:
    assert check_commands(["show clock", "show version"]) == ("show clock", "show version")
    with pytest.raises(ValueError, match="at least one"):
        check_commands([])
    with pytest.raises(TypeError, match="not one string"):
        check_commands("show clock")
    with pytest.raises(ValueError, match=r"U\+0085"):
        check_commands(["show\x85clock"])  # C1 next-line


@pytest.mark.parametrize("size", [0, 1, 199, 200, 201, 999, 1000, 1001, 123456])
def test_truncate_keeps_head_and_tail_within_the_limit(size: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(size))
    cut = truncate(text, 200)
    assert len(cut) <= 200
    if size <= 200:
        assert cut == text
        return
    head, marker, tail = cut.split("\n")
    n = int(marker.removeprefix("[… ").removesuffix(" characters cut …]"))
    assert len(head) + n + len(tail) == size
    assert text.startswith(head) and text.endswith(tail)
    assert len(cut) == 200


# -- snmp_get ----------------------------------------------------------------------------------------

SYS_NAME, SYS_UPTIME = "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.3.0"


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    agent = Snmpd(tmp_path_factory.mktemp("snmpd-get")).start()
    yield agent
    agent.stop()


@pytest.fixture
async def engine() -> AsyncIterator[SnmpEngine]:
    snmp_engine = SnmpEngine()  # one per event loop
    yield snmp_engine
    snmp_engine.close_dispatcher()


@pytest.mark.peers
async def test_get_values_reads_objects_and_none_for_missing_ones(snmpd: Snmpd, engine: SnmpEngine) -> None:
    missing_instance, missing_object = "1.3.6.1.2.1.1.5.1", "1.3.6.1.4.1.99999.1.0"
    values = await get_values(engine, "127.0.0.1", v2c(snmpd.port), Credentials(community="public"),
                              [SYS_NAME, "." + SYS_UPTIME, missing_instance, missing_object])
    assert list(values) == [SYS_NAME, SYS_UPTIME, missing_instance, missing_object]
    assert values[SYS_NAME] == socket.gethostname()
    uptime = values[SYS_UPTIME]
    assert isinstance(uptime, int) and uptime > 0  # TimeTicks, hundredths of a second
    assert values[missing_instance] is None and values[missing_object] is None


@pytest.mark.peers
async def test_get_values_with_a_wrong_community_times_out(snmpd: Snmpd, engine: SnmpEngine) -> None:
    with pytest.raises(SnmpTimeout) as caught:
        await get_values(engine, "127.0.0.1", v2c(snmpd.port), Credentials(community="not-the-community"), [SYS_NAME])
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{snmpd.port}: no answer within 0.5s x 1 tries")
    assert "the community is right" in message and "not-the-community" not in message


async def test_get_values_refuses_a_name_before_sending(engine: SnmpEngine) -> None:
    config = v2c(free_port())
    with pytest.raises(ValueError, match="'sysName.0' is not a numeric OID"):
        await get_values(engine, "127.0.0.1", config, Credentials(community="public"), [SYS_NAME, "sysName.0"])
    assert await get_values(engine, "127.0.0.1", config, Credentials(community="public"), []) == {}
