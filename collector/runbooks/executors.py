"""Carry out one planned step against the world: SSH, network CLI, SNMP, HTTP, waiting, notifying.

Each action is an ``async`` function of the :class:`~collector.runbooks.render.PlannedStep` (its
params already rendered, secrets revealed), the run and a :class:`World` (what the collector knows
and can reach). It returns an :class:`Outcome`; failures are outcomes with a reason for people,
not exceptions. ``approve`` and ``runbook`` steps are the runner's own, not here.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from collector import CollectorError
from collector.inventory import InventoryEntry
from collector.runbooks.model import (
    CliParams,
    HttpParams,
    NotifyParams,
    SnmpGetParams,
    SshParams,
    WaitCondition,
    WaitUntilParams,
)
from collector.runbooks.render import PlannedStep
from collector.store.runbooks import RunRecord
from schoolops.wire import Report

MAX_OUTPUT = 16000
# how IOS, NX-OS, VRP and Comware say a command line was not accepted
_DEVICE_ERROR = re.compile(r"^(% ?(Invalid|Incomplete|Ambiguous|Unknown|Unrecognized|Error)|Error:)", re.IGNORECASE)
WAIT_POLL = 1.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: str = ""
    exit_status: int | None = None
    detail: str = ""  # why it failed, or what was observed
    timed_out: bool = False

    @property
    def status(self) -> str:
        return "ok" if self.ok else "timed_out" if self.timed_out else "failed"


class World(Protocol):
    """What steps act on: the inventory, secrets, fresh data, people."""

    def entry(self, asset: str) -> InventoryEntry | None: ...
    def secret(self, name: str) -> str: ...
    def fault_active(self, fingerprint: str) -> bool: ...
    def report(self, asset: str) -> tuple[Report | None, float]: ...  # the latest report and when it arrived
    async def notify(self, params: NotifyParams, run: RunRecord) -> str: ...  # whom it reached
    async def snmp_get(self, entry: InventoryEntry, oids: list[str]) -> dict[str, Any]: ...
    cli_slots: asyncio.Semaphore


def _entry(world: World, run: RunRecord, other: str | None = None) -> InventoryEntry:
    name = other or run.asset
    entry = world.entry(name)
    if entry is None:
        raise CollectorError(f"asset {name!r} is not in the inventory: nothing to connect to")
    return entry


async def run_ssh_step(step: PlannedStep, run: RunRecord, world: World) -> Outcome:
    from collector.runbooks.ssh import SshError, SshTarget, run_ssh

    assert isinstance(step.params, SshParams)
    entry = _entry(world, run)
    if entry.ssh is None or entry.address is None:
        return Outcome(False, detail=f"asset {run.asset!r} has no ssh section in the inventory")
    config = entry.ssh
    try:
        target = SshTarget(host=entry.address.strip("[]"), port=config.port, username=config.username,
                           known_hosts=config.known_hosts, private_key=world.secret(config.key_secret),
                           passphrase=world.secret(config.passphrase_secret) if config.passphrase_secret else None)
    except KeyError as exc:
        return Outcome(False, detail=f"the credential store has no secret {exc.args[0]!r}: schoolops secret set {exc.args[0]}")
    argv = list(step.params.argv)
    if step.params.as_user:
        argv = ["sudo", "-n", "-u", step.params.as_user, "--", *argv]
    try:
        result = await run_ssh(target, argv, timeout=step.timeout, max_output=MAX_OUTPUT)
    except SshError as exc:
        return Outcome(False, detail=str(exc))
    if result.timed_out:
        return Outcome(False, output=result.output, timed_out=True,
                       detail=f"killed after {step.timeout:g}s: the command was still running")
    if result.exit_status != 0:
        return Outcome(False, output=result.output, exit_status=result.exit_status,
                       detail=f"exit status {result.exit_status}")
    return _expected(step.params.expect, result.output, exit_status=0)


def _expected(pattern: str | None, output: str, *, exit_status: int | None = None) -> Outcome:
    if pattern and not re.search(pattern, output, re.MULTILINE):
        return Outcome(False, output=output, exit_status=exit_status, detail=f"the output does not match /{pattern}/")
    return Outcome(True, output=output, exit_status=exit_status)


async def run_cli_step(step: PlannedStep, run: RunRecord, world: World) -> Outcome:
    from collector.network.cli import CliError
    from collector.runbooks.netcli import run_cli

    assert isinstance(step.params, CliParams)
    entry = _entry(world, run, step.params.device)
    if entry.cli is None or entry.address is None:
        return Outcome(False, detail=f"asset {entry.name!r} has no cli section in the inventory")
    config = entry.cli
    try:
        password = world.secret(config.password_secret) if config.password_secret else None
        enable = world.secret(config.enable_secret) if config.enable_secret else None
    except KeyError as exc:
        return Outcome(False, detail=f"the credential store has no secret {exc.args[0]!r}: schoolops secret set {exc.args[0]}")
    try:
        result = await run_cli(entry.address, config, password, enable, list(step.params.commands),
                               config_mode=step.params.config_mode, timeout=step.timeout,
                               semaphore=world.cli_slots, max_output=MAX_OUTPUT)
    except (CliError, ValueError) as exc:
        return Outcome(False, detail=str(exc))
    refused = [line.strip() for line in result.output.splitlines() if _DEVICE_ERROR.match(line.strip())]
    if refused:
        return Outcome(False, output=result.output, detail=f"the device refused a command: {refused[0]}")
    return _expected(step.params.expect, result.output)


async def run_snmp_step(step: PlannedStep, run: RunRecord, world: World) -> Outcome:
    from collector.network.snmp import SnmpError

    assert isinstance(step.params, SnmpGetParams)
    entry = _entry(world, run, step.params.device)
    if entry.snmp is None or entry.address is None:
        return Outcome(False, detail=f"asset {entry.name!r} has no snmp section in the inventory")
    oids = [oid.lstrip(".") for oid in step.params.oids]
    try:
        values = await world.snmp_get(entry, oids)
    except (SnmpError, KeyError, ValueError) as exc:
        return Outcome(False, detail=str(exc))
    missing = [oid for oid in oids if values.get(oid) is None]
    output = "\n".join(f"{oid} = {values.get(oid)!r}" for oid in oids)
    if missing:
        return Outcome(False, output=output, detail=f"no such object on the device: {', '.join(missing)}")
    wrong = [f"{oid} is {values.get(oid.lstrip('.'))!r}, expected {want!r}" for oid, want in (step.params.expect or {}).items()
             if str(values.get(oid.lstrip("."))) != want]
    if wrong:
        return Outcome(False, output=output, detail="; ".join(wrong))
    return Outcome(True, output=output)


async def run_http_step(step: PlannedStep, run: RunRecord, world: World) -> Outcome:
    assert isinstance(step.params, HttpParams)
    params = step.params
    timeout = aiohttp.ClientTimeout(total=step.timeout)
    try:
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            async with session.request(params.method, params.url, allow_redirects=False) as response:
                body = (await response.content.read(MAX_OUTPUT)).decode("utf-8", errors="replace")
                status = response.status
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return Outcome(False, detail=f"{params.method} {params.url}: {type(exc).__name__}: {exc}".rstrip(": "))
    problems = []
    if status != params.expect_status:
        problems.append(f"status {status}, expected {params.expect_status}")
    if params.body_contains and params.body_contains not in body:
        problems.append(f"the body does not contain {params.body_contains!r}")
    return Outcome(not problems, output=f"HTTP {status}\n{body}", exit_status=status, detail="; ".join(problems))


def _condition_met(params: WaitUntilParams, run: RunRecord, world: World, since: float) -> tuple[bool, str]:
    if params.condition is WaitCondition.FAULT_CLEARED:
        if run.fault is None:
            return False, "this run was not started by a fault: there is nothing to clear"
        active = world.fault_active(run.fault)
        return not active, "the fault is still firing" if active else "the fault cleared"
    report, received = world.report(run.asset)
    if report is None or received < since:
        return False, f"no report from {run.asset} since the wait began"
    target = params.target or ""
    if params.condition is WaitCondition.PORT_LISTENING:
        ports = [p for p in report.ports or [] if str(p.port) == target or p.name == target]
        if not ports:
            return False, f"the agent on {run.asset} does not watch port {target} (probes.ports)"
        return ports[0].listening, f"port {target} {'listens' if ports[0].listening else 'does not listen'}"
    probes = [p for p in report.probes or [] if p.name == target]
    if not probes:
        return False, f"no probe named {target!r} on {run.asset}"
    return probes[0].up, f"probe {target} is {'up' if probes[0].up else 'down'}"


async def run_wait_step(step: PlannedStep, run: RunRecord, world: World) -> Outcome:
    assert isinstance(step.params, WaitUntilParams)
    started = time.time()
    deadline = started + float(step.params.timeout)
    while True:
        met, observed = _condition_met(step.params, run, world, started)
        if met:
            return Outcome(True, detail=f"{observed} after {time.time() - started:.0f}s")
        if time.time() >= deadline:
            return Outcome(False, timed_out=True, detail=f"not within {step.params.timeout:g}s: {observed}")
        await asyncio.sleep(min(WAIT_POLL, max(0.0, deadline - time.time())))


async def run_notify_step(step: PlannedStep, run: RunRecord, world: World) -> Outcome:
    assert isinstance(step.params, NotifyParams)
    reached = await world.notify(step.params, run)
    if not reached:
        return Outcome(False, detail="nobody could be notified (no on-call file, or no contact for these targets)")
    return Outcome(True, detail=f"sent to {reached}")


Executor = Callable[[PlannedStep, RunRecord, World], Awaitable[Outcome]]

EXECUTORS: dict[str, Executor] = {
    "ssh": run_ssh_step,
    "cli": run_cli_step,
    "snmp_get": run_snmp_step,
    "http": run_http_step,
    "wait_until": run_wait_step,
    "notify": run_notify_step,
}
