"""A runbook's ``cli`` step: show or configuration commands on a network device over SSH (netmiko).

:mod:`collector.network.cli` only ever sends its fixed read-only commands; this module is where a
runbook's own commands, configuration commands included, reach a device. It shares that module's
connection set-up (:func:`~collector.network.cli.connection_params`: host keys verified against the
device's own ``known_hosts``, never the user's) and its error classification, so a failure is one
of the same :class:`~collector.network.cli.CliError` subclasses with the same words.

- ``config_mode=False``: each command with ``send_command`` (after ``enable`` when an enable
  secret is given).
- ``config_mode=True``: ``enable``, then all commands with ``send_config_set``: netmiko enters
  configuration mode, sends them one by one and leaves it again.

Each command must be one line: a control character (CR, LF, tab, ESC …) would let one command
carry others, or trigger the device's line editing, so it is refused before connecting.

netmiko blocks, so the session runs in ``asyncio.to_thread`` behind the caller's semaphore. A
thread cannot be cancelled (and a session that may still be changing a device must not be
abandoned), so the overall ``timeout`` is enforced through netmiko's own timeouts: the connection's
are set to it and each read's to what is left of it. Passwords and secrets are never logged and
never part of an error; the commands are not logged either (they may hold a resolved secret).
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko
import structlog
from netmiko import BaseConnection
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoBaseException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from collector.network.cli import (
    CliAuthFailed,
    CliError,
    CliTimeout,
    _classify,
    _connect,
    _target,
    connection_params,
)
from collector.network.config import CliConfig

logger = structlog.get_logger("schoolops.runbooks.netcli")

MIN_OUTPUT = 200
"""The smallest ``max_output`` accepted: room for the cut marker and some text either side."""


@dataclass(frozen=True)
class CliRun:
    """What one ``cli`` step did on a device."""

    output: str  # what the device printed, prompts and echoed commands included; head and tail kept if cut
    commands: tuple[str, ...]
    duration: float  # seconds, connection included


async def run_cli(
    address: str,
    config: CliConfig,
    password: str | None,
    enable: str | None,
    commands: Sequence[str],
    *,
    config_mode: bool,
    timeout: float,
    semaphore: asyncio.Semaphore,
    max_output: int = 16000,
) -> CliRun:
    """Run ``commands`` on the device in one SSH session; configuration commands with ``config_mode``.

    ``password`` and ``enable`` are the resolved values of ``config.password_secret`` and
    ``config.enable_secret`` (or None). The output is cut to ``max_output`` characters, keeping its
    head and tail. Raises ValueError (before connecting) for a command that is empty or holds a
    control character, and :class:`CliError` (one of its subclasses) when the session fails.
    """
    checked = check_commands(commands)
    if timeout <= 0:
        raise ValueError(f"timeout: must be positive, got {timeout!r}")
    if max_output < MIN_OUTPUT:
        raise ValueError(f"max_output: at least {MIN_OUTPUT} characters, got {max_output}")
    async with semaphore:
        started = time.monotonic()
        try:
            output = await asyncio.to_thread(
                _session, address, config, password, enable, checked, config_mode, timeout
            )
        except CliError as exc:
            logger.info("runbook_cli_failed", target=exc.target, error_kind=type(exc).__name__,
                        commands=len(checked), config_mode=config_mode, seconds=round(time.monotonic() - started, 3))
            raise
        duration = time.monotonic() - started
    logger.info("runbook_cli_ran", target=_target(address, config), commands=len(checked), config_mode=config_mode,
                seconds=round(duration, 3), output_chars=len(output))
    return CliRun(output=truncate(output, max_output), commands=checked, duration=duration)


def check_commands(commands: Sequence[str]) -> tuple[str, ...]:
    """The commands as a tuple. ValueError: none, an empty one, or one holding a control character;
    TypeError: one string instead of a list."""
    if isinstance(commands, str):
        raise TypeError("commands: a list of command lines, not one string")
    checked = tuple(commands)
    if not checked:
        raise ValueError("commands: at least one command")
    for index, command in enumerate(checked):
        if not command.strip():
            raise ValueError(f"commands[{index}]: empty command")
        bad = next((ch for ch in command if unicodedata.category(ch) == "Cc"), None)
        if bad is not None:
            raise ValueError(
                f"commands[{index}]: control character U+{ord(bad):04X} refused: one command per item, "
                "on one line, without CR, LF, tab or escape characters"
            )
    return checked


def truncate(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters; else its head and tail around a
    ``[… N characters cut …]`` line, the whole at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    while True:  # the marker's own length depends on N: settle it (a few rounds at most)
        marker = f"\n[… {cut} characters cut …]\n"
        needed = len(text) - (limit - len(marker))
        if needed == cut:
            break
        cut = needed
    kept = len(text) - cut
    head = kept // 2
    return text[:head] + marker + text[len(text) - (kept - head):]


def _session(
    address: str,
    config: CliConfig,
    password: str | None,
    enable: str | None,
    commands: tuple[str, ...],
    config_mode: bool,
    timeout: float,
) -> str:
    target = _target(address, config)
    deadline = time.monotonic() + timeout

    def left(before: str) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CliTimeout(target, f"the step's timeout of {timeout:g}s ran out {before}")
        return remaining

    params = connection_params(address, config, password, enable, timeout)
    error: CliError
    cause: BaseException | None = None
    try:
        with _connect(params, config, address) as connection:
            if enable or config_mode:
                _enable(connection, target, enable)
            prompt = connection.find_prompt()
            if config_mode:
                return prompt + str(connection.send_config_set(
                    list(commands), read_timeout=left("before the configuration commands")))
            transcript = [prompt]
            for index, command in enumerate(commands, start=1):
                raw = connection.send_command(command, read_timeout=left(f"before command {index} of {len(commands)}"),
                                              strip_prompt=False, strip_command=False)
                transcript.append(str(raw))  # text: no parser asked for
            return "".join(transcript)
    except CliError as exc:  # ours, already worded (host key, key file, enable, the step's timeout)
        error = exc
    except NetmikoAuthenticationException as exc:
        error, cause = CliAuthFailed(target, "login refused (check the username, password or key)"), exc
    except NetmikoTimeoutException as exc:
        error, cause = _classify(exc, target, address, config), exc
    except ReadTimeout as exc:
        error, cause = CliTimeout(target, f"no prompt after a command within the step's timeout of {timeout:g}s"), exc
    except (NetmikoBaseException, paramiko.SSHException, OSError, EOFError) as exc:
        error, cause = CliError(target, f"session failed: {type(exc).__name__}: {exc}"), exc
    clean = _scrubbed(error, password, enable)
    if clean is error and cause is None:
        raise error
    raise clean from (cause if clean is error else None)  # a masked reason: drop the unmasked chain too


def _enable(connection: BaseConnection, target: str, enable: str | None) -> None:
    """Privileged mode (where configuration mode starts); already there with a privileged login."""
    try:
        connection.enable()
    except ValueError:  # netmiko: "Failed to enter enable mode"
        if enable:
            raise CliAuthFailed(target, "the enable secret was refused") from None
        raise CliAuthFailed(target, "configuration needs privileged mode: the login is not privileged "
                                    "and no enable secret is configured") from None


def _scrubbed(error: CliError, *secrets: str | None) -> CliError:
    """``error`` with any secret's text masked in its reason (a device may echo what it was sent)."""
    reason = error.reason
    for secret in secrets:
        if secret:
            reason = reason.replace(secret, "***")
    if reason == error.reason:
        return error
    return type(error)(error.target, reason)
