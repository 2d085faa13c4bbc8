"""A fake Cisco IOS switch on asyncssh's SSH server, for tests of the network CLI (test support only).

No package offers a usable fake Cisco device for Python 3 (PEERS.md), so this is a small one that
behaves like a Catalyst 2960-X running IOS 15.2 where netmiko's ``cisco_ios`` driver looks:

- password login (``device.username`` / ``device.password``), a fixed ed25519 host key made per
  test, a PTY with asyncssh's line editor (echo, CRLF) as netmiko expects;
- prompts ``NAME>`` (user exec), ``NAME#`` (after ``enable`` + ``device.enable_secret``),
  ``NAME(config)#``, ``NAME(config-if)#``, ``NAME(config-vlan)#``;
- ``terminal length 0``, ``terminal width 511``, ``show version``, ``show interfaces [NAME]``,
  ``show interfaces status``, ``show spanning-tree summary``, ``show running-config``
  (privileged only, like IOS), ``show logging``, ``show clock``, with IOS's abbreviations
  (``sh run``, ``sh int``);
- ``configure terminal`` / ``interface X`` / ``shutdown`` / ``no shutdown`` / ``description`` /
  ``vlan N`` / ``name`` / ``hostname`` / ``exit`` / ``end`` change the running configuration and
  stamp "Last configuration change at … by USER" with the session's user, as IOS does.

The test owns the state: ``device.running_config`` (the body from ``version`` to ``end``) can be
replaced between connections (that stamps the change as made by ``device.console_user``),
``device.link_up`` says which ports have a cable, ``device.commands`` records every command line
received (never the enable secret), ``device.connections`` counts the SSH connections accepted,
``device.clock`` is the device's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncssh

INITIAL_CONFIG = """\
version 15.2
no service pad
service timestamps debug datetime msec
service timestamps log datetime msec
service password-encryption
!
hostname {hostname}
!
boot-start-marker
boot-end-marker
!
enable secret 9 $9$mF1zQeG0aTk3Bf$u8Vq2f3cN1v0pQ7Xl8YtB1wKzq4m9nTgC1rHsD2eJ5c
!
username netops privilege 1 secret 9 $9$Xc2sQ0b1aYk8Lf$g7Ty1Qp4Zr0mN3vB9xW6kH2jD5sA8fE1cU0oI7lP3nM
aaa new-model
!
aaa authentication login default local
aaa authorization exec default local
!
clock timezone UTC 0 0
system mtu routing 1500
!
ip domain-name school.example
!
spanning-tree mode rapid-pvst
spanning-tree extend system-id
!
vlan internal allocation policy ascending
!
vlan 10
 name staff
!
vlan 20
 name students
!
interface GigabitEthernet1/0/1
 description uplink to core
 switchport trunk allowed vlan 1,10,20
 switchport mode trunk
!
interface GigabitEthernet1/0/2
 description classroom 2.14
 switchport access vlan 20
 switchport mode access
 spanning-tree portfast edge
!
interface GigabitEthernet1/0/3
 description staff room printer
 switchport access vlan 10
 switchport mode access
!
interface Vlan1
 ip address 10.20.0.2 255.255.255.0
!
ip default-gateway 10.20.0.1
ip http server
ip http secure-server
!
logging host 10.20.0.10
snmp-server community s3cret-ro RO
!
line con 0
line vty 0 4
 transport input ssh
line vty 5 15
 transport input ssh
!
ntp clock-period 36028797
ntp server 10.20.0.1
end
"""

SHOW_VERSION = """\
Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E7, RELEASE SOFTWARE (fc3)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2022 by Cisco Systems, Inc.
Compiled Wed 12-Oct-22 09:36 by mcpre

ROM: Bootstrap program is C2960X boot loader
BOOTLDR: C2960X Boot Loader (C2960X-HBOOT-M) Version 15.2(7r)E, RELEASE SOFTWARE (fc1)

{hostname} uptime is 3 weeks, 2 days, 4 hours, 17 minutes
System returned to ROM by power-on
System restarted at 09:12:44 UTC Mon Nov 2 2026
System image file is "flash:c2960x-universalk9-mz.152-7.E7.bin"
Last reload reason: power-on



This product contains cryptographic features and is subject to United
States and local country laws governing import, export, transfer and
use. Delivery of Cisco cryptographic products does not imply
third-party authority to import, export, distribute or use encryption.
Importers, exporters, distributors and users are responsible for
compliance with U.S. and local country laws. By using this product you
agree to comply with applicable laws and regulations. If you are unable
to comply with U.S. and local laws, return this product immediately.

A summary of U.S. laws governing Cisco cryptographic products may be found at:
http://www.cisco.com/wwl/export/crypto/tool/stqrg.html

If you require further assistance please contact us by sending email to
export@cisco.com.

License Level: lanbase
License Type: Permanent Right-To-Use
Next reload license Level: lanbase

cisco WS-C2960X-24TS-L (APM86XXX) processor (revision B0) with 524288K bytes of memory.
Processor board ID FOC1932X0K1
Last reset from power-on
1 Virtual Ethernet interface
28 Gigabit Ethernet interfaces
The password-recovery mechanism is enabled.

512K bytes of flash-simulated non-volatile configuration memory.
Base ethernet MAC Address       : 70:DB:98:1A:2B:00
Motherboard assembly number     : 73-15289-06
Power supply part number        : 341-0528-01
Motherboard serial number       : FOC19310A1B
Power supply serial number      : DCB1928A0C2
Model revision number           : B0
Motherboard revision number     : A0
Model number                    : WS-C2960X-24TS-L
Daughterboard assembly number   : 73-14200-02
Daughterboard serial number     : FOC19300B2C
System serial number            : FOC1932X0K1
Top Assembly Part Number        : 68-5022-01
Top Assembly Revision Number    : A0
Version ID                      : V04
CLEI Code Number                : CMMPP00DRB
Daughterboard revision number   : A0
Hardware Board Revision Number  : 0x02


Switch Ports Model                     SW Version            SW Image
------ ----- -----                     ----------            ----------
*    1 28    WS-C2960X-24TS-L          15.2(7)E7             C2960X-UNIVERSALK9-M


Configuration register is 0xF

"""

SHOW_LOGGING = """\
Syslog logging: enabled (0 messages dropped, 2 messages rate-limited, 0 flushes, 0 overruns, xml disabled, filtering disabled)

No Active Message Discriminator.



No Inactive Message Discriminator.


    Console logging: level debugging, 48 messages logged, xml disabled,
                     filtering disabled
    Monitor logging: level debugging, 0 messages logged, xml disabled,
                     filtering disabled
    Buffer logging:  level debugging, 48 messages logged, xml disabled,
                    filtering disabled
    Exception Logging: size (4096 bytes)
    Count and timestamp logging messages: disabled
    File logging: disabled
    Persistent logging: disabled

No active filter modules.

    Trap logging: level informational, 52 message lines logged
        Logging to 10.20.0.10  (udp port 514, audit disabled,
              link up),
              52 message lines logged,
              0 message lines rate-limited,
              0 message lines dropped-by-MD,
              xml disabled, sequence number disabled
              filtering disabled
        Logging Source-Interface:       VRF Name:

Log Buffer (4096 bytes):

Nov 23 09:58:41.112: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.20.0.10)
Nov 23 10:01:12.540: %LINK-3-UPDOWN: Interface GigabitEthernet1/0/2, changed state to down
Nov 23 10:01:13.541: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet1/0/2, changed state to down
"""

_INVALID = "% Invalid input detected at '^' marker.\n"
_SUBMODE_WORDS = {
    "config-if": {"shutdown", "description", "switchport", "spanning-tree", "ip", "speed", "duplex", "power", "storm-control"},
    "config-vlan": {"name"},
}


@dataclass
class FakeCiscoDevice:
    """The switch's state; tests read and change it between (and during) connections."""

    hostname: str = "sw-lab-1"
    username: str = "netops"
    password: str = "lab-password-1"
    enable_secret: str = "lab-enable-1"
    console_user: str = "admin"  # who "made" changes the test applies through running_config
    clock: Callable[[], float] = time.time
    link_up: dict[str, bool] = field(default_factory=lambda: {
        "GigabitEthernet1/0/1": True, "GigabitEthernet1/0/2": True, "GigabitEthernet1/0/3": False,
    })
    commands: list[str] = field(default_factory=list)
    connections: int = 0  # SSH connections accepted, whether or not they logged in
    last_change_by: str = "admin"
    last_change_at: float = 0.0
    clock_period: int = 36028797  # IOS rewrites `ntp clock-period` as NTP disciplines the clock
    _config: str = ""

    def __post_init__(self) -> None:
        if not self._config:
            self._config = INITIAL_CONFIG.format(hostname=self.hostname)
        if not self.last_change_at:
            self.last_change_at = self.clock() - 3600

    # -- the running configuration -------------------------------------------------------------
    @property
    def running_config(self) -> str:
        return self._config

    @running_config.setter
    def running_config(self, text: str) -> None:
        self._config = text if text.endswith("\n") else text + "\n"
        self.touch(by=self.console_user)

    def touch(self, *, by: str | None = None) -> None:
        """Stamp a configuration change now (IOS does so even when a config command changes nothing)."""
        self.last_change_at = self.clock()
        self.last_change_by = by or self.console_user

    def show_running_config(self) -> str:
        self.clock_period += 1  # volatile, like the real thing
        body = re.sub(r"(?m)^ntp clock-period \d+$", f"ntp clock-period {self.clock_period}", self._config)
        stamp = datetime.fromtimestamp(self.last_change_at, UTC).strftime("%H:%M:%S UTC %a %b %d %Y")
        head = f"!\n! Last configuration change at {stamp} by {self.last_change_by}\n!\n"
        size = len(head) + len(body)
        return f"Building configuration...\n\nCurrent configuration : {size} bytes\n{head}{body}\n"

    def blocks(self) -> list[list[str]]:
        """Top-level config sections: a line and the indented lines under it."""
        out: list[list[str]] = []
        for line in self._config.splitlines():
            if line.startswith(" ") and out:
                out[-1].append(line)
            else:
                out.append([line])
        return out

    def _write_blocks(self, blocks: list[list[str]]) -> None:
        self._config = "\n".join(line for block in blocks for line in block) + "\n"

    def ensure_section(self, header: str, *, user: str) -> None:
        """Create the section ``header`` (``interface Vlan20``, ``vlan 30``) after its siblings."""
        blocks = self.blocks()
        if any(b[0] == header for b in blocks):
            return
        kind = header.split()[0]
        siblings = [i for i, b in enumerate(blocks) if b[0].split()[:1] == [kind]]
        at = siblings[-1] + 1 if siblings else len(blocks) - 1
        if at < len(blocks) and blocks[at] == ["!"]:
            at += 1
        blocks[at:at] = [[header], ["!"]]
        self._write_blocks(blocks)
        self.touch(by=user)

    def set_section(self, header: str, line: str, *, remove: bool = False, user: str) -> None:
        """Add (or remove, with ``no``) ``line`` under the section ``header``."""
        self.ensure_section(header, user=user)
        blocks = self.blocks()
        section = next(b for b in blocks if b[0] == header)
        keyword = line.split()[0]
        body = section[1:]
        if remove:
            body = [s for s in body if s.strip() != line and not s.strip().startswith(line + " ")]
        else:
            if keyword in ("description", "name"):  # single-valued settings replace the old value
                body = [s for s in body if s.split()[0] != keyword]
            if f" {line}" not in body:
                body.append(f" {line}")
        section[1:] = body
        self._write_blocks(blocks)
        self.touch(by=user)

    def set_global(self, line: str, *, remove: bool = False, user: str) -> None:
        blocks = self.blocks()
        if line.startswith("hostname "):
            self.hostname = line.split(maxsplit=1)[1]
            blocks = [[line] if b[0].startswith("hostname ") else b for b in blocks]
        elif remove:
            blocks = [b for b in blocks if b[0] != line]
        elif not any(b[0] == line for b in blocks):
            blocks.insert(len(blocks) - 1, [line])
        self._write_blocks(blocks)
        self.touch(by=user)

    # -- show commands ----------------------------------------------------------------------------
    def interfaces(self) -> list[tuple[str, list[str]]]:
        return [(b[0].split(maxsplit=1)[1], [s.strip() for s in b[1:]]) for b in self.blocks()
                if b[0].startswith("interface ")]

    def show_interfaces(self, only: str | None = None) -> str:
        out = []
        for index, (name, settings) in enumerate(self.interfaces(), start=1):
            if only is not None and name != only:
                continue
            description = next((s.split(maxsplit=1)[1] for s in settings if s.startswith("description ")), None)
            shut = "shutdown" in settings
            mac = f"70db.981a.2b{index:02x}"
            if name.startswith("Vlan"):
                state = "administratively down, line protocol is down" if shut else "up, line protocol is up"
                out.append(_svi(name, state, mac, description, settings))
                continue
            if shut:
                state = "administratively down, line protocol is down (disabled)"
            elif self.link_up.get(name, False):
                state = "up, line protocol is up (connected)"
            else:
                state = "down, line protocol is down (notconnect)"
            out.append(_port(name, state, mac, description, up=state.startswith("up")))
        return "".join(out)

    def _port_state(self, name: str, settings: list[str]) -> str:
        """``connected``, ``notconnect`` or ``disabled`` (shut), as ``show interfaces status`` says."""
        if "shutdown" in settings:
            return "disabled"
        return "connected" if self.link_up.get(name, False) else "notconnect"

    @staticmethod
    def _vlan_of(settings: list[str]) -> str:
        if "switchport mode trunk" in settings:
            return "trunk"
        return next((s.split()[-1] for s in settings if s.startswith("switchport access vlan ")), "1")

    def show_interfaces_status(self) -> str:
        """One line per switch port (SVIs are not listed), the description cut to 18 characters, like IOS."""
        lines = ["", "Port      Name               Status       Vlan       Duplex  Speed Type"]
        for name, settings in self.interfaces():
            if name.startswith("Vlan"):
                continue
            description = next((s.split(maxsplit=1)[1] for s in settings if s.startswith("description ")), "")
            status = self._port_state(name, settings)
            duplex, speed = ("a-full", "a-1000") if status == "connected" else ("auto", "auto")
            lines.append(f"{_short_name(name):<9} {description[:18]:<18} {status:<12} {self._vlan_of(settings):<10} "
                         f"{duplex:>6} {speed:>6} 10/100/1000BaseTX")
        return "\n".join(lines) + "\n"

    def show_spanning_tree_summary(self) -> str:
        """The mode from the configuration and, per VLAN, its connected ports as forwarding."""
        mode = next((b[0].split()[-1] for b in self.blocks() if b[0].startswith("spanning-tree mode ")), "pvst")
        vlans = sorted({1} | {int(b[0].split()[1]) for b in self.blocks() if re.fullmatch(r"vlan \d+", b[0])})
        ports = [(self._vlan_of(settings), self._port_state(name, settings)) for name, settings in self.interfaces()
                 if not name.startswith("Vlan")]
        rows, total = [], 0
        for vlan in vlans:
            forwarding = sum(1 for member, state in ports if state == "connected" and member in ("trunk", str(vlan)))
            total += forwarding
            rows.append(f"{f'VLAN{vlan:04d}':<22} {0:>8} {0:>9} {0:>8} {forwarding:>10} {forwarding:>10}")
        rule = "---------------------- -------- --------- -------- ---------- ----------"
        return "\n".join([
            f"Switch is in {mode} mode",
            "Root bridge for: none",
            "Extended system ID                      is enabled",
            "Portfast Default                        is disabled",
            "PortFast BPDU Guard Default             is disabled",
            "Portfast BPDU Filter Default            is disabled",
            "Loopguard Default                       is disabled",
            "EtherChannel misconfig guard            is enabled",
            "Configured Pathcost method used is short",
            "UplinkFast                              is disabled",
            "BackboneFast                            is disabled",
            "",
            "Name                   Blocking Listening Learning Forwarding STP Active",
            rule, *rows, rule,
            f"{f'{len(vlans)} vlans':<22} {0:>8} {0:>9} {0:>8} {total:>10} {total:>10}",
        ]) + "\n"


def _short_name(name: str) -> str:
    """``GigabitEthernet1/0/2`` as ``show interfaces status`` prints it: ``Gi1/0/2``."""
    for full, short in (("TenGigabitEthernet", "Te"), ("GigabitEthernet", "Gi"), ("FastEthernet", "Fa"),
                        ("Port-channel", "Po")):
        if name.startswith(full):
            return short + name[len(full):]
    return name


def _port(name: str, state: str, mac: str, description: str | None, *, up: bool) -> str:
    speed = "Full-duplex, 1000Mb/s" if up else "Auto-duplex, Auto-speed"
    desc = f"  Description: {description}\n" if description else ""
    return f"""\
{name} is {state}
  Hardware is Gigabit Ethernet, address is {mac} (bia {mac})
{desc}  MTU 1500 bytes, BW {'1000000' if up else '10000'} Kbit/sec, DLY {'10' if up else '1000'} usec,
     reliability 255/255, txload 1/255, rxload 1/255
  Encapsulation ARPA, loopback not set
  Keepalive set (10 sec)
  {speed}, media type is 10/100/1000BaseTX
  input flow-control is off, output flow-control is unsupported
  ARP type: ARPA, ARP Timeout 04:00:00
  Last input {'00:00:01' if up else 'never'}, output {'00:00:00' if up else 'never'}, output hang never
  Last clearing of "show interface" counters never
  Input queue: 0/75/0/0 (size/max/drops/flushes); Total output drops: 0
  Queueing strategy: fifo
  Output queue: 0/40 (size/max)
  5 minute input rate {'2000' if up else '0'} bits/sec, {'3' if up else '0'} packets/sec
  5 minute output rate {'5000' if up else '0'} bits/sec, {'4' if up else '0'} packets/sec
     {'1234567' if up else '0'} packets input, {'234567890' if up else '0'} bytes, 0 no buffer
     Received 45678 broadcasts (40000 multicasts)
     0 runts, 0 giants, 0 throttles
     0 input errors, 0 CRC, 0 frame, 0 overrun, 0 ignored
     0 watchdog, 40000 multicast, 0 pause input
     0 input packets with dribble condition detected
     {'2345678' if up else '0'} packets output, {'345678901' if up else '0'} bytes, 0 underruns
     0 output errors, 0 collisions, 1 interface resets
     0 unknown protocol drops
     0 babbles, 0 late collision, 0 deferred
     0 lost carrier, 0 no carrier, 0 pause output
     0 output buffer failures, 0 output buffers swapped out
"""


def _svi(name: str, state: str, mac: str, description: str | None, settings: list[str]) -> str:
    desc = f"  Description: {description}\n" if description else ""
    address = next((s.split()[2:4] for s in settings if s.startswith("ip address ")), None)
    inet = ""
    if address:
        prefix = sum(int(octet).bit_count() for octet in address[1].split("."))
        inet = f"  Internet address is {address[0]}/{prefix}\n"
    return f"""\
{name} is {state}
  Hardware is EtherSVI, address is {mac} (bia {mac})
{desc}{inet}  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec,
     reliability 255/255, txload 1/255, rxload 1/255
  Encapsulation ARPA, loopback not set
  Keepalive not supported
  ARP type: ARPA, ARP Timeout 04:00:00
  Last input 00:00:00, output 00:00:00, output hang never
  Last clearing of "show interface" counters never
  Input queue: 0/75/0/0 (size/max/drops/flushes); Total output drops: 0
  Queueing strategy: fifo
  Output queue: 0/40 (size/max)
  5 minute input rate 1000 bits/sec, 1 packets/sec
  5 minute output rate 0 bits/sec, 0 packets/sec
     123456 packets input, 12345678 bytes, 0 no buffer
     Received 0 broadcasts (0 IP multicasts)
     0 runts, 0 giants, 0 throttles
     0 input errors, 0 CRC, 0 frame, 0 overrun, 0 ignored
     23456 packets output, 2345678 bytes, 0 underruns
     0 output errors, 0 interface resets
     0 unknown protocol drops
     0 output buffer failures, 0 output buffers swapped out
"""


def _is(words: list[str], *full: str) -> bool:
    """IOS abbreviations: each word typed is a prefix of the command's word (``sh run``)."""
    return len(words) == len(full) and all(f.startswith(w.lower()) for w, f in zip(words, full, strict=True))


def _interface_name(text: str) -> str:
    match = re.fullmatch(r"([A-Za-z]+)\s*(\d.*)", text.strip())
    if not match:
        return text.strip()
    kind, number = match.groups()
    for full in ("GigabitEthernet", "TenGigabitEthernet", "FastEthernet", "Vlan", "Port-channel", "Loopback"):
        if full.lower().startswith(kind.lower()):
            return full + number
    return kind + number


class _Session:
    """One SSH shell on the device: its mode and the commands it understands."""

    def __init__(self, device: FakeCiscoDevice, process: asyncssh.SSHServerProcess[str]) -> None:
        self.device = device
        self.process = process
        self.user = str(process.get_extra_info("username"))
        self.mode = "exec"  # exec | enable | config | config-if | config-vlan
        self.section = ""  # the config section being edited, e.g. "interface GigabitEthernet1/0/2"

    def prompt(self) -> str:
        name = self.device.hostname
        return {"exec": f"{name}>", "enable": f"{name}#"}.get(self.mode, f"{name}({self.mode})#")

    def write(self, text: str) -> None:
        self.process.stdout.write(text)

    async def run(self) -> None:
        self.write("\n" + self.prompt())
        while True:
            line = await self.process.stdin.readline()
            if not line:  # EOF
                return
            command = line.strip()
            if command:
                self.device.commands.append(command)
            if await self.execute(command) is False:
                return
            self.write(self.prompt())

    async def execute(self, command: str) -> bool:
        words = command.split()
        if not words:
            return True
        if self.mode in ("exec", "enable"):
            return await self.exec_command(words)
        self.config_command(command, words)
        return True

    async def exec_command(self, words: list[str]) -> bool:
        device = self.device
        privileged = self.mode == "enable"
        if _is(words, "exit") or _is(words, "logout") or _is(words, "quit"):
            return False
        if _is(words[:1], "enable") and len(words) == 1:
            if not privileged:
                await self.enable()
        elif _is(words, "disable"):
            self.mode = "exec"
        elif _is(words, "terminal", "length", "0") or (len(words) == 3 and _is(words[:2], "terminal", "width")):
            pass
        elif _is(words, "show", "version"):
            self.write(SHOW_VERSION.format(hostname=device.hostname))
        elif _is(words, "show", "interfaces") or _is(words, "show", "interface"):
            self.write(device.show_interfaces())
        elif _is(words, "show", "interfaces", "status"):
            self.write(device.show_interfaces_status())
        elif _is(words, "show", "spanning-tree", "summary"):
            self.write(device.show_spanning_tree_summary())
        elif len(words) >= 3 and _is(words[:2], "show", "interfaces"):
            self.write(device.show_interfaces(_interface_name(" ".join(words[2:]))))
        elif _is(words, "show", "logging"):
            self.write(SHOW_LOGGING)
        elif _is(words, "show", "clock"):
            self.write(datetime.fromtimestamp(device.clock(), UTC).strftime("*%H:%M:%S.000 UTC %a %b %d %Y\n"))
        elif privileged and _is(words, "show", "running-config"):
            self.write(device.show_running_config())
        elif privileged and _is(words, "configure", "terminal"):
            self.write("Enter configuration commands, one per line.  End with CNTL/Z.\n")
            self.mode = "config"
        else:
            self.write(" " * (len(self.prompt()) + len(words[0]) // 2) + "^\n" + _INVALID)
        return True

    async def enable(self) -> None:
        self.write("Password: ")
        self.process.channel.set_echo(False)  # type: ignore[attr-defined]  # the line editor's channel
        try:
            secret = (await self.process.stdin.readline()).rstrip("\r\n")
        finally:
            self.process.channel.set_echo(True)  # type: ignore[attr-defined]
        self.write("\n")
        if secret == self.device.enable_secret:
            self.mode = "enable"
        else:
            self.write("% Access denied\n\n")

    def config_command(self, command: str, words: list[str]) -> None:
        device = self.device
        negate = words[0] == "no"
        rest = " ".join(words[1:]) if negate else command
        if _is(words, "end"):
            self.mode, self.section = "enable", ""
        elif _is(words, "exit"):
            self.mode, self.section = ("enable", "") if self.mode == "config" else ("config", "")
        elif self.mode != "config" and not words[0].startswith(("interface", "vlan", "hostname")):
            keyword = rest.split()[0] if rest else ""
            if keyword not in _SUBMODE_WORDS[self.mode]:
                self.write(" " * (len(self.prompt()) + 1) + "^\n" + _INVALID)
                return
            device.set_section(self.section, rest, remove=negate, user=self.user)
        elif words[0] == "interface" and len(words) >= 2:
            self.section, self.mode = f"interface {_interface_name(' '.join(words[1:]))}", "config-if"
            device.ensure_section(self.section, user=self.user)
        elif words[0] == "vlan" and len(words) == 2 and words[1].isdigit():
            self.section, self.mode = f"vlan {words[1]}", "config-vlan"
            device.ensure_section(self.section, user=self.user)
        elif negate and words[1:2] == ["vlan"]:
            device.set_global(rest, remove=True, user=self.user)
        elif words[0] == "hostname" and len(words) == 2:
            device.set_global(command, user=self.user)
        elif words[0] in ("ip", "logging", "ntp", "snmp-server", "spanning-tree", "no"):
            device.set_global(rest, remove=negate, user=self.user)
        else:
            self.write(" " * (len(self.prompt()) + 1) + "^\n" + _INVALID)


class _Server(asyncssh.SSHServer):
    def __init__(self, device: FakeCiscoDevice) -> None:
        self.device = device

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.device.connections += 1

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self.device.username and password == self.device.password


@dataclass
class FakeDeviceServer:
    """A running fake device: ``device`` is its state; ``await stop()`` closes the listener and sessions."""

    device: FakeCiscoDevice
    server: asyncssh.SSHAcceptor
    port: int
    host_key: asyncssh.SSHKey
    host_key_line: str

    async def stop(self) -> None:
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 5)


async def start_fake_device(
    port: int = 0, *, device: FakeCiscoDevice | None = None, host: str = "127.0.0.1", **device_fields: object
) -> tuple[FakeDeviceServer, int, str]:
    """Start a fake switch on ``host:port`` (0: a free port); returns (server, port, known_hosts line).

    ``device_fields`` set the FakeCiscoDevice's fields when no ``device`` is given (hostname,
    username, password, enable_secret …).
    """
    device = device or FakeCiscoDevice(**device_fields)  # type: ignore[arg-type]
    host_key = asyncssh.generate_private_key("ssh-ed25519")

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        try:
            await _Session(device, process).run()
        except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, asyncssh.ConnectionLost, BrokenPipeError):
            pass
        finally:
            process.exit(0)

    acceptor = await asyncssh.create_server(
        lambda: _Server(device), host, port, server_host_keys=[host_key], process_factory=handle,
        line_editor=True, encoding="utf-8", allow_scp=False, agent_forwarding=False,
        x11_forwarding=False, sftp_factory=None, keepalive_interval=0,
    )
    bound = acceptor.sockets[0].getsockname()[1]
    public = host_key.export_public_key("openssh").decode().split()
    address = host if bound == 22 else f"[{host}]:{bound}"
    line = f"{address} {public[0]} {public[1]}"
    return FakeDeviceServer(device, acceptor, bound, host_key, line), bound, line


@contextlib.contextmanager
def served_in_a_thread(device: FakeCiscoDevice) -> Iterator[FakeDeviceServer]:
    """``device`` listening on a free loopback port, served by an event loop of its own in a thread (for
    tests whose collector is another process); stopped, and its loop closed, at the end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = None
    try:
        server, _, _ = asyncio.run_coroutine_threadsafe(start_fake_device(device=device), loop).result(30)
        yield server
    finally:
        if server is not None:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
