"""Read-only network CLI: run a device's show/display commands over SSH with netmiko.

Only the commands in ``COMMAND_SETS`` are ever sent by this module: each purpose ("version",
"interfaces", "logging", "config") maps to one read-only show/display command per device type.
Besides them, netmiko's session set-up sends what every session needs and nothing that changes
the device: the terminal settings of the session itself (``terminal length 0`` and
``terminal width 511`` on IOS, ``screen-length 0 temporarily`` on VRP, ``screen-length disable``
on Comware), ``enable`` with the enable secret when one is configured, and ``exit`` at the end.
Changing a device is the runbook engine's job, never this module's.

Host keys are always verified: netmiko runs with ``ssh_strict=True`` against the device's own
``known_hosts`` file and never the user's; an unknown or changed key is :class:`HostKeyRejected`.
netmiko blocks, so each session runs in ``asyncio.to_thread`` behind the caller's semaphore
(which bounds the threads and the sessions the devices see). Passwords and secrets are passed in
by the caller, never logged, and never part of an error message.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import paramiko
import structlog
from netmiko import BaseConnection, ConnectHandler
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoBaseException,
    NetmikoTimeoutException,
    ReadTimeout,
)
from ntc_templates.parse import ParsingException, parse_output
from textfsm import TextFSMError

from collector import CollectorError
from collector.network.config import CliConfig

logger = structlog.get_logger("schoolops.network.cli")

_IOS = {"version": "show version", "interfaces": "show interfaces", "logging": "show logging",
        "config": "show running-config"}
_VRP = {"version": "display version", "interfaces": "display interface brief", "logging": "display logbuffer",
        "config": "display current-configuration"}

COMMAND_SETS: dict[str, dict[str, str]] = {
    "cisco_ios": _IOS,
    "cisco_xe": _IOS,
    "cisco_nxos": {"version": "show version", "interfaces": "show interface", "logging": "show logging logfile",
                   "config": "show running-config"},
    "huawei": _VRP,
    "huawei_vrpv8": _VRP,
    "hp_comware": _VRP,
    "h3c_comware": _VRP,
    "ruijie_os": _IOS,
    "linux": {"version": "uname -a", "interfaces": "ip link show", "logging": "journalctl --no-pager -n 200",
              "config": "cat /etc/network/interfaces"},
}
"""Per netmiko device type: purpose → the one read-only command this module sends for it."""

# ntc-templates names some platforms differently from netmiko; None: no templates for that family
_NTC_PLATFORM: dict[str, str | None] = {
    "cisco_ios": "cisco_ios", "cisco_xe": "cisco_ios", "cisco_nxos": "cisco_nxos",
    "huawei": "huawei_vrp", "huawei_vrpv8": "huawei_vrp", "hp_comware": "hp_comware", "h3c_comware": "hp_comware",
    "ruijie_os": None, "linux": "linux",
}
_UNPARSED_PURPOSES = frozenset({"config"})  # configuration text is kept as text (see backup.py)


class CliError(CollectorError):
    """A network CLI session failed. ``permanent``: retrying will not help until a person acts."""

    permanent = False

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


class HostKeyRejected(CliError):
    """The device's host key is unknown or differs from known_hosts: possibly an impostor. Never retried."""

    permanent = True


class CliAuthFailed(CliError):
    """Login or the enable secret was refused."""

    permanent = True


class CliTimeout(CliError):
    """The device did not answer in time (connection, login or a command's output)."""


class CliUnreachable(CliError):
    """The TCP connection failed (refused, no route, unknown name)."""


@dataclass(frozen=True)
class CommandOutput:
    raw: str
    parsed: list[dict[str, object]] | None  # ntc-templates rows; None where no template applies
    command: str = ""


async def run_commands(
    address: str,
    config: CliConfig,
    password: str | None,
    enable: str | None,
    purposes: list[str],
    *,
    semaphore: asyncio.Semaphore,
) -> dict[str, CommandOutput]:
    """Run the commands for ``purposes`` in one SSH session; purpose → output.

    ``password`` and ``enable`` are the resolved values of ``config.password_secret`` and
    ``config.enable_secret`` (or None). Raises :class:`CliError` (one of its subclasses).
    """
    commands = commands_for(config.device_type, purposes)
    async with semaphore:
        return await asyncio.to_thread(_session, address, config, password, enable, commands)


def commands_for(device_type: str, purposes: list[str]) -> dict[str, str]:
    """Purpose → command; ValueError naming the purpose when the device type has none for it."""
    table = COMMAND_SETS.get(device_type)
    if table is None:
        raise ValueError(f"device_type: no command set for {device_type!r} (known: {', '.join(COMMAND_SETS)})")
    unknown = [p for p in purposes if p not in table]
    if unknown:
        raise ValueError(f"purposes: {device_type} has no command for {', '.join(unknown)} (known: {', '.join(table)})")
    return {p: table[p] for p in purposes}


def parse(device_type: str, purpose: str, command: str, raw: str) -> list[dict[str, object]] | None:
    """Rows from ntc-templates for this output, or None when no template exists (or it does not fit)."""
    platform = _NTC_PLATFORM.get(device_type)
    if platform is None or purpose in _UNPARSED_PURPOSES:
        return None
    try:
        rows = parse_output(platform=platform, command=command, data=raw)
    except ParsingException:  # no template for this command on this platform
        return None
    except TextFSMError as exc:  # the template's Error state: output the template does not know
        logger.warning("cli_parse_failed", device_type=device_type, command=command, error=str(exc))
        return None
    return list(rows)


def connection_params(
    address: str, config: CliConfig, password: str | None, enable: str | None, timeout: float
) -> dict[str, object]:
    """netmiko's ConnectHandler arguments for this device, its timeouts set to ``timeout`` seconds.

    Host keys: this device's ``known_hosts`` only, never the user's; an unknown key is rejected.
    """
    return {
        "device_type": config.device_type,
        "host": address,
        "port": config.port,
        "username": config.username,
        "password": password or "",
        "secret": enable or "",
        "use_keys": config.key_file is not None,
        "key_file": config.key_file,
        "allow_agent": False,
        # host keys: this device's known_hosts only, unknown keys rejected
        "ssh_strict": True,
        "system_host_keys": False,
        "alt_host_keys": True,
        "alt_key_file": config.known_hosts,
        "conn_timeout": timeout,
        "auth_timeout": timeout,
        "banner_timeout": timeout,
        "session_log": None,
    }


def _target(address: str, config: CliConfig) -> str:
    return f"{config.device_type} {config.username}@{address}:{config.port}"


def _session(
    address: str, config: CliConfig, password: str | None, enable: str | None, commands: Mapping[str, str]
) -> dict[str, CommandOutput]:
    target = _target(address, config)
    timeout = float(config.timeout)
    params = connection_params(address, config, password, enable, timeout)
    results: dict[str, CommandOutput] = {}
    try:
        with _connect(params, config, address) as connection:
            if enable:
                try:
                    connection.enable()
                except ValueError:  # netmiko: "Failed to enter enable mode"
                    raise CliAuthFailed(target, "the enable secret was refused") from None
            for purpose, command in commands.items():
                raw = str(connection.send_command(command, read_timeout=timeout))  # text: no use_textfsm
                results[purpose] = CommandOutput(raw, parse(config.device_type, purpose, command, raw), command)
    except CliError:
        raise
    except NetmikoAuthenticationException as exc:
        raise CliAuthFailed(target, "login refused (check the username, password or key)") from exc
    except NetmikoTimeoutException as exc:
        raise _classify(exc, target, address, config) from exc
    except ReadTimeout as exc:
        raise CliTimeout(target, f"no prompt after a command within {timeout:g}s") from exc
    except (NetmikoBaseException, paramiko.SSHException, OSError, EOFError) as exc:
        raise CliError(target, f"session failed: {type(exc).__name__}: {exc}") from exc
    return results


class _connect:
    """ConnectHandler as a context manager that always disconnects."""

    def __init__(self, params: dict[str, object], config: CliConfig, address: str) -> None:
        self.params = params
        self.target = _target(address, config)
        self.known_hosts = config.known_hosts
        self.key_file = config.key_file

    def __enter__(self) -> BaseConnection:
        if not os.path.isfile(self.known_hosts):
            raise HostKeyRejected(self.target, f"known_hosts file {self.known_hosts} does not exist: "
                                  "no host key can be verified, so the device is not contacted")
        if self.key_file is not None and not os.path.isfile(self.key_file):
            raise CliError(self.target, f"key_file {self.key_file} does not exist")
        self.connection = ConnectHandler(**self.params)
        return self.connection

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.connection.disconnect()
        except Exception as exc:  # noqa: BLE001 - the session's own outcome matters, not the goodbye
            logger.debug("cli_disconnect_failed", target=self.target, error=str(exc))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify(exc: NetmikoTimeoutException, target: str, address: str, config: CliConfig) -> CliError:
    """netmiko reports host-key trouble and refused connections as timeouts: find the real cause."""
    entry = address if config.port == 22 else f"[{address}]:{config.port}"
    for cause in _causes(exc):
        if isinstance(cause, paramiko.BadHostKeyException):
            return HostKeyRejected(target, (
                f"the host key does not match known_hosts {config.known_hosts}: the device offered "
                f"{cause.key.get_name()} {cause.key.fingerprint}, known_hosts has "
                f"{cause.expected_key.get_name()} {cause.expected_key.fingerprint}. The device may have been "
                f"replaced or re-keyed, or someone is in between. Check the fingerprint on the device's console "
                f"(IOS: show ip ssh / show crypto key mypubkey; VRP: display rsa local-key-pair public), then replace "
                f"the entry: ssh-keygen -R '{entry}' -f {config.known_hosts}; "
                f"ssh-keyscan -p {config.port} {address} >> {config.known_hosts}"
            ))
        if isinstance(cause, paramiko.SSHException) and "not found in known_hosts" in str(cause):
            return HostKeyRejected(target, _unknown_host(entry, address, config))
    message = str(exc)
    if "not found in known_hosts" in message:
        return HostKeyRejected(target, _unknown_host(entry, address, config))
    if "does not match" in message and "Host key" in message:
        return HostKeyRejected(target, f"the host key does not match known_hosts {config.known_hosts}")
    if "TCP connection to device failed" in message or "DNS failure" in message:
        return CliUnreachable(target, "TCP connection failed (wrong address or port, device down, or a firewall)")
    return CliTimeout(target, " ".join(message.split())[:300])


def _unknown_host(entry: str, address: str, config: CliConfig) -> str:
    return (
        f"the host key is not in known_hosts {config.known_hosts} ({entry} unknown), so the device is not "
        f"trusted. Read the key's fingerprint on the device's console, compare it with "
        f"`ssh-keyscan -p {config.port} {address} | ssh-keygen -lf -`, and only then add it: "
        f"ssh-keyscan -p {config.port} {address} >> {config.known_hosts}"
    )
