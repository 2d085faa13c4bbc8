"""The network side of the collector: pollers, probes, traps and config backups, fed into the same path.

Whatever is learned about a device or a service — an SNMP poll, a probe result, a trap — updates
what the collector knows of that asset, and the asset's report is composed again from all of it:
the fleet view, the rules, incidents and /metrics treat it exactly like an agent's report. A
linkDown trap flips the interface it names, so the trap and the next poll's ifOperStatus=down are
one fault; traps with no state to flip (authentication failures, restarts) are event faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import structlog

from collector import logbook
from collector.domain import FaultType, Finding, Severity
from collector.fleet import Fleet
from collector.incidents.engine import IncidentEngine
from collector.inventory import InventoryEntry
from collector.logbook import LogBook
from collector.network import backup, cli, trap_receiver, trap_sources, traps
from collector.network.prober import Prober
from collector.network.snmp import Credentials, PollResult
from collector.network.snmp_poller import SnmpPoller, SnmpTarget
from collector.rules.measure import POLLER
from collector.settings import NetworkConfig
from collector.store import incidents as q
from collector.supervise import every
from schoolops.wire import SCHEMA_VERSION, Cpu, Device, Interface, ProbeResult, Report

logger = structlog.get_logger("schoolops.network")
Secret = Callable[[str], str]


@dataclass
class Observed:
    """Everything currently known of one network asset."""

    interval: float = 60.0
    device: Device | None = None
    interfaces: list[Interface] | None = None
    cpu_percent: float | None = None
    storage: list = field(default_factory=list)
    temperatures: list = field(default_factory=list)
    probes: dict[str, ProbeResult] = field(default_factory=dict)


class NetworkService:
    def __init__(self, fleet: Fleet, engine: IncidentEngine, store: object, secret: Secret, *, data_dir: Path,
                 config: NetworkConfig, logbook: LogBook | None = None, clock: Callable[[], float] = time.time) -> None:
        self.fleet, self.engine, self.store, self.secret = fleet, engine, store, secret
        self.logbook = logbook
        self.config = config
        self.clock = clock
        self.observed: dict[str, Observed] = {}
        self.entries: dict[str, InventoryEntry] = {}
        self.poller = SnmpPoller(on_result=self.on_poll, concurrency=config.snmp_concurrency, clock=clock)
        self.prober: Prober | None = None
        self.receiver: trap_receiver.TrapReceiver | None = None
        self.repo = backup.ConfigRepo(data_dir / "config-backups")
        self._cli_slots = asyncio.Semaphore(config.cli_concurrency)
        self._backup_due: dict[str, float] = {}
        self._stream = secrets.token_hex(16)
        self._seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._probe_task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self, entries: list[InventoryEntry]) -> None:
        await self.apply_inventory(entries)
        self._tasks = [asyncio.create_task(self.poller.run(), name="snmp-poller"),
                       asyncio.create_task(every(1.0, self.backups_due, name="config-backup"), name="config-backup")]

    async def stop(self) -> None:
        for task in [*self._tasks, *([self._probe_task] if self._probe_task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.receiver is not None:
            await self.receiver.stop()
        self.poller.close()

    async def apply_inventory(self, entries: list[InventoryEntry]) -> None:
        """(Re)read the targets: called at start and after every inventory reload."""
        self.entries = {e.name: e for e in entries}
        targets = []
        for entry in entries:
            if entry.snmp and entry.address:
                try:
                    credentials = Credentials.from_config(entry.snmp, self.secret)
                except (KeyError, ValueError) as exc:  # one device's missing secret must not stop the others
                    logger.error("snmp_target_skipped", asset=entry.name, error=f"{type(exc).__name__}: {exc}",
                                 hint="schoolops secret set NAME")
                    continue
                targets.append(SnmpTarget(asset=entry.name, address=entry.address, config=entry.snmp,
                                          credentials=credentials))
                self.observed.setdefault(entry.name, Observed()).interval = float(entry.snmp.interval)
        self.poller.set_targets(targets)
        items = [(e.name, probe) for e in entries for probe in e.probes]
        for name, _ in items:
            self.observed.setdefault(name, Observed())
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        self.prober = Prober(items, self.on_probe, concurrency=self.config.probe_concurrency, clock=self.clock)
        self._probe_task = asyncio.create_task(self.prober.run(), name="prober") if items else None
        await self._restart_traps(entries)

    async def _restart_traps(self, entries: list[InventoryEntry]) -> None:
        if self.receiver is not None:
            await self.receiver.stop()
            self.receiver = None
        if not self.config.trap_host:
            return
        sources = {}
        for e in entries:
            if e.snmp and e.address:
                try:
                    sources[e.address] = trap_sources.TrapSource.from_snmp_config(
                        e.name, e.snmp, self.secret, engine_id=e.snmp.engine_id)
                except (KeyError, ValueError, traps.TrapError) as exc:
                    logger.error("trap_source_skipped", asset=e.name, error=f"{type(exc).__name__}: {exc}")
        self.receiver = trap_receiver.TrapReceiver(sources, self.on_trap, host=self.config.trap_host, port=self.config.trap_port)
        await self.receiver.start()

    # --- what arrives ---------------------------------------------------------------------------
    async def on_poll(self, asset: str, result: PollResult, now: float) -> None:
        seen = self.observed.setdefault(asset, Observed())
        seen.device = result.device
        if result.device.reachable:
            seen.interfaces, seen.cpu_percent = result.interfaces, result.cpu_percent
            seen.storage, seen.temperatures = result.storage, result.temperatures
        await self.publish(asset, now)

    async def on_probe(self, asset: str, result: ProbeResult, now: float) -> None:
        self.observed.setdefault(asset, Observed()).probes[result.name] = result
        await self.publish(asset, now)

    async def on_trap(self, asset: str, event: traps.TrapEvent) -> None:
        seen = self.observed.setdefault(asset, Observed())
        if self.logbook is not None:  # the interface by the name the poll gave it, when the trap names only its index
            polled = next((i.name for i in seen.interfaces or () if i.index == event.if_index), None)
            await self.logbook.add([logbook.from_trap(asset, event, interface=event.if_name or polled)])
        if event.kind in (traps.TrapKind.LINK_DOWN, traps.TrapKind.LINK_UP) and seen.interfaces and event.if_index is not None:
            up = event.kind is traps.TrapKind.LINK_UP
            admin = _admin_status(event)  # a deliberate shutdown says so: no fault for it
            seen.interfaces = [
                msgspec.structs.replace(i, oper_up=up, admin_up=i.admin_up if admin is None else admin)
                if i.index == event.if_index else i for i in seen.interfaces]
            logger.info("trap_applied", asset=asset, kind=event.kind.value, if_index=event.if_index)
            await self.publish(asset, event.received_at)
            return
        found = traps.classify_trap(event, traps.default_trap_rules())
        if found is None:
            logger.info("trap_unmapped", asset=asset, oid=event.trap_oid)
            return
        await self.engine.on_event(found.as_finding(asset), clears=found.clears, ttl=float(self.config.event_ttl))

    async def publish(self, asset: str, now: float) -> None:
        seen = self.observed[asset]
        self._seq += 1
        report = Report(
            schema=SCHEMA_VERSION, asset=asset, stream=self._stream, seq=self._seq, collected_at=now,
            interval=seen.interval, agent_version=POLLER, device=seen.device, interfaces=seen.interfaces,
            probes=sorted(seen.probes.values(), key=lambda p: p.name) or None,
            cpu=Cpu(percent=min(100.0, seen.cpu_percent), cores=[]) if seen.cpu_percent is not None else None,
            filesystems=seen.storage or None, temperatures=seen.temperatures or None,
        )
        view = self.fleet.update(report, now)
        await self.engine.on_report(view)

    # --- config backups -------------------------------------------------------------------------
    async def backups_due(self) -> None:
        now = self.clock()
        for entry in self.entries.values():
            if entry.cli is None or not entry.cli.backup or entry.address is None:
                continue
            if self._backup_due.get(entry.name, 0.0) > now:
                continue
            self._backup_due[entry.name] = now + float(entry.cli.backup_interval)
            await self.back_up(entry, now)

    async def back_up(self, entry: InventoryEntry, now: float, *, raising: bool = False) -> backup.Change | None:
        """Fetch and store ``entry``'s configuration; the change, or None when it is unchanged (or, unless
        ``raising``, when the backup failed: that fires a fault instead)."""
        assert entry.cli is not None and entry.address is not None
        fingerprint_key = "config"
        try:
            password = self.secret(entry.cli.password_secret) if entry.cli.password_secret else None
            enable = self.secret(entry.cli.enable_secret) if entry.cli.enable_secret else None
            change = await backup.back_up(entry.name, entry.address, entry.cli, password, enable, self.repo,
                                          semaphore=self._cli_slots, at=now)
        except (cli.CliError, backup.BackupError, KeyError) as exc:
            logger.warning("config_backup_failed", asset=entry.name, error=str(exc))
            await self.engine.on_event(Finding(
                rule="config_backup_failed", asset=entry.name, key=fingerprint_key, type=FaultType.APPLICATION,
                severity=Severity.P4, value=None, summary=f"the configuration backup of {entry.name} failed: {exc}",
                since=now), ttl=float(entry.cli.backup_interval) * 2)
            if raising:
                raise
            return None
        await self.engine.on_event(Finding(rule="config_backup_failed", asset=entry.name, key=fingerprint_key,
                                           type=FaultType.APPLICATION, severity=Severity.P4, value=None, summary="",
                                           since=now), clears=True)
        if change is None or change.first:
            return change
        if self.logbook is not None:
            await self.logbook.add([logbook.config_change(entry.name, change.added, change.removed, change.changed_by, now)])
        in_window = await self.store.run(lambda c: self._in_maintenance(c, entry.name, now))  # type: ignore[attr-defined]
        if not in_window:
            who = f" by {change.changed_by}" if change.changed_by else ""
            await self.engine.on_event(Finding(
                rule="config_changed", asset=entry.name, key=change.commit_id[:12], type=FaultType.SECURITY,
                severity=Severity.P3, value=float(change.added + change.removed),
                summary=f"the configuration of {entry.name} changed outside a maintenance window{who} "
                        f"(+{change.added} -{change.removed}; schoolops backups diff {entry.name})", since=now),
                ttl=float(self.config.event_ttl) * 24)
        logger.info("config_changed", asset=entry.name, commit=change.commit_id[:12], in_maintenance=in_window)
        return change

    def _in_maintenance(self, conn: object, asset: str, now: float) -> bool:
        from collector.incidents.maintenance import windows_covering
        from collector.incidents.windows import to_window

        windows = [to_window(w) for w in q.windows(conn, not_handled_only=True)]  # type: ignore[arg-type]
        return bool(windows_covering(windows, self.engine.context(asset), now))


IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7."


def _admin_status(event: traps.TrapEvent) -> bool | None:
    """ifAdminStatus from a link trap's varbinds (RFC 2863 sends it), if present: up (1) or not."""
    for oid, value in event.varbinds:
        if oid.startswith(IF_ADMIN_STATUS):
            return value.strip() in ("1", "up", "up(1)")
    return None
