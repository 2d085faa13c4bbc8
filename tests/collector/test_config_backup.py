"""Configuration backup: the fake Cisco switch's running configuration kept in a git repository."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dulwich.repo import Repo

from collector.network.backup import (
    BackupError,
    ConfigRepo,
    back_up,
    strip_volatile,
    who_changed,
)
from collector.network.cli import run_commands
from collector.network.config import CliConfig
from tests.fake_cli_device import FakeDeviceServer

pytestmark = pytest.mark.timeout(60)

T0 = 1_795_000_000.0  # the backups' times: passed in, never read from a clock


async def backup(server: FakeDeviceServer, config: CliConfig, repo: ConfigRepo, at: float):  # type: ignore[no-untyped-def]
    device = server.device
    return await back_up("sw-lab-1", "127.0.0.1", config, device.password, device.enable_secret, repo,
                         semaphore=asyncio.Semaphore(1), at=at, author="schoolops collector")


async def test_a_change_makes_one_commit_naming_who_changed_it(
    switch: tuple[FakeDeviceServer, CliConfig], tmp_path: Path
) -> None:
    server, config = switch
    repo = ConfigRepo(tmp_path / "data" / "config-backup")

    first = await backup(server, config, repo, T0)
    assert first is not None and first.first
    assert len(repo.history("sw-lab-1")) == 1

    # someone adds a VLAN on the console; the switch stamps "Last configuration change … by admin"
    server.device.console_user = "admin"
    server.device.running_config = server.device.running_config.replace(
        "vlan 20\n name students\n!\n", "vlan 20\n name students\n!\nvlan 30\n name guests\n!\n")

    change = await backup(server, config, repo, T0 + 86400)
    assert change is not None and not change.first
    assert change.device == "sw-lab-1" and change.at == T0 + 86400
    assert (change.added, change.removed) == (3, 0)
    assert "+vlan 30\n+ name guests\n" in change.diff
    assert change.changed_by == "admin"

    history = repo.history("sw-lab-1")
    assert [commit_id for commit_id, _, _ in history] == [change.commit_id, first.commit_id]  # newest first
    assert [at for _, at, _ in history] == [T0 + 86400, T0]
    assert history[0][2] == "sw-lab-1: configuration changed (+3 -0) by admin"
    assert history[1][2].startswith("sw-lab-1: first backup")

    assert "vlan 30" in repo.show("sw-lab-1")
    assert "vlan 30" not in repo.show("sw-lab-1", first.commit_id)
    assert "+vlan 30" in repo.diff("sw-lab-1")  # default: the last change
    between = repo.diff("sw-lab-1", first.commit_id[:10], change.commit_id).splitlines()
    assert [line for line in between if line.startswith("+") and not line.startswith("+++")] == \
        ["+vlan 30", "+ name guests", "+!"]

    # the stored file carries no volatile lines; it is an ordinary git repository
    stored = (tmp_path / "data" / "config-backup" / "sw-lab-1.cfg").read_text()
    assert "Last configuration change" not in stored and "ntp clock-period" not in stored
    assert "Current configuration" not in stored and stored.startswith("!\n")
    with Repo(str(tmp_path / "data" / "config-backup")) as git:
        assert git.refs[b"refs/heads/main"].decode() == change.commit_id
        assert git[change.commit_id.encode()].author == b"schoolops collector <schoolops.collector@schoolops>"


async def test_only_volatile_lines_changed_makes_no_commit(
    switch: tuple[FakeDeviceServer, CliConfig], tmp_path: Path
) -> None:
    server, config = switch
    repo = ConfigRepo(tmp_path / "config-backup")
    assert await backup(server, config, repo, T0) is not None
    before = server.device.show_running_config()

    server.device.touch(by="admin")  # someone entered and left config mode: a new timestamp, same config
    server.device.last_change_at += 120
    assert await backup(server, config, repo, T0 + 3600) is None
    after = server.device.show_running_config()
    assert before != after  # the raw text did change (timestamp, ntp clock-period, size) …
    assert len(repo.history("sw-lab-1")) == 1  # … but not the configuration


async def test_a_change_made_through_the_cli_names_the_session_user(
    switch: tuple[FakeDeviceServer, CliConfig], tmp_path: Path
) -> None:
    """A runbook (here netmiko in config mode as user netops) shuts a port; the backup sees it and who."""
    server, config = switch
    repo = ConfigRepo(tmp_path / "config-backup")
    await backup(server, config, repo, T0)

    def shut_port() -> None:
        from netmiko import ConnectHandler

        with ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=config.port,
                            username=server.device.username, password=server.device.password,
                            secret=server.device.enable_secret, ssh_strict=True, system_host_keys=False,
                            alt_host_keys=True, alt_key_file=config.known_hosts, allow_agent=False) as c:
            c.enable()
            c.send_config_set(["interface GigabitEthernet1/0/3", "shutdown"])

    await asyncio.to_thread(shut_port)
    change = await backup(server, config, repo, T0 + 60)
    assert change is not None
    assert change.diff.count("\n+ shutdown") == 1 and (change.added, change.removed) == (1, 0)
    assert change.changed_by == server.device.username == "netops"
    interfaces = await run_commands("127.0.0.1", config, server.device.password, None, ["interfaces"],
                                    semaphore=asyncio.Semaphore(1))
    links = {row["interface"]: row["link_status"] for row in interfaces["interfaces"].parsed or []}
    assert links["GigabitEthernet1/0/3"] == "administratively down"


def test_repository_questions_about_unknown_things(tmp_path: Path) -> None:
    repo = ConfigRepo(tmp_path / "config-backup")
    assert repo.history("sw-x") == [] and repo.devices() == []
    with pytest.raises(BackupError):
        repo.show("sw-x")
    with pytest.raises(BackupError):
        repo.diff("sw-x")
    with pytest.raises(ValueError, match="device"):
        repo.save("../etc/passwd", "x", at=T0, author="t")
    repo.save("sw-a", "hostname sw-a\n", at=T0, author="t", device_type="cisco_ios")
    assert repo.devices() == ["sw-a"]
    with pytest.raises(BackupError, match="unknown"):
        repo.show("sw-a", "deadbeef")


IOS_RAW = """\
Building configuration...

Current configuration : 1501 bytes
!
! Last configuration change at 10:02:03 UTC Mon Nov 23 2026 by admin
! NVRAM config last updated at 09:58:41 UTC Mon Nov 23 2026 by admin
!
version 15.2
hostname sw-lab-1
ntp clock-period 36028797
end
"""


def test_strip_volatile_per_device_type() -> None:
    assert strip_volatile(IOS_RAW, "cisco_ios") == "!\n!\nversion 15.2\nhostname sw-lab-1\nend\n"
    assert strip_volatile(IOS_RAW, "linux") == IOS_RAW.rstrip("\n") + "\n"  # Linux text is kept as it is
    vrp = "!Software Version V200R019C10SPC500\n!Last configuration was updated at 2026-11-23 10:02:03+08:00 by admin\n#\nsysname core\n"
    assert strip_volatile(vrp, "huawei") == "!Software Version V200R019C10SPC500\n#\nsysname core\n"
    nxos = "!Command: show running-config\n!Running configuration last done at: Mon Nov 23 10:02:03 2026\n!Time: Mon Nov 23 10:05:00 2026\n\nversion 9.3(8)\n"
    assert strip_volatile(nxos, "cisco_nxos") == "version 9.3(8)\n"


def test_who_changed_reads_the_device_stamp() -> None:
    assert who_changed(IOS_RAW, "cisco_ios") == "admin"
    diff = ("--- a/sw.cfg\n+++ b/sw.cfg\n@@ -1,3 +1,3 @@\n"
            "-! Last configuration change at 09:00:00 UTC Mon Nov 23 2026 by alice\n"
            "+! Last configuration change at 10:02:03 UTC Mon Nov 23 2026 by bob\n")
    assert who_changed(diff, "cisco_ios") == "bob"
    assert who_changed("!Last configuration was updated at 2026-11-23 10:02:03+08:00 by netadmin\n", "huawei") == "netadmin"
    assert who_changed("! Last configuration change at 10:02:03 UTC Mon Nov 23 2026\n", "cisco_ios") is None
    assert who_changed(IOS_RAW, "linux") is None
