"""Carry out one patrol run: every item on every asset it applies to, bounded in concurrency.

A run is a row in ``patrol_runs`` (queued by a person or the schedule); :meth:`PatrolRunner.run`
fills in its results and marks it done. What an item checks decides where the value comes from:

- ``metric``: the asset's latest report (the agent's, or the poller's for a device), as the rules
  see it (:func:`collector.rules.measure.measurements`). A report too old to trust, or a device the
  poller cannot reach, makes the item *not checked* with that reason — never normal.
- ``ssh``, ``cli``, ``snmp_get``, ``http``: asked now, through the same transports as runbooks
  (host keys verified, secrets from the credential store). A transport failure is *not checked*
  with the failure named (an HTTP service that does not answer is *abnormal*: answering is the check).
- ``manual``: a *pending* row per asset (or one for the site) for the patroller to fill in.

An abnormal result fires a fault through the normal incident path (rule ``patrol:ITEM``: the
item's type and severity) and, if the item names one, queues its runbook; a normal result clears
the fault an earlier patrol opened. What a runbook fixed during the run is marked handled; every
other abnormal result is recorded and reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from collector.domain import Finding as FaultFinding
from collector.fleet import Fleet
from collector.inventory import InventoryEntry
from collector.patrol import judge as j
from collector.patrol.context import describe
from collector.patrol.model import (
    Checklist,
    CliMethod,
    HttpMethod,
    Item,
    ManualMethod,
    MetricMethod,
    Section,
    SnmpGetMethod,
    SshMethod,
    text_for,
)
from collector.rules.measure import measurements
from collector.store import patrol as p
from collector.store import runbooks as rb

logger = structlog.get_logger("schoolops.patrol")
STALE_INTERVALS = 3  # a report older than this many of the asset's intervals is not trusted
STALE_FLOOR = 120.0  # ... and never younger than this
FAULT_TTL = 26 * 3600.0  # a patrol fault without a later patrol to clear it clears itself after this


@dataclass(frozen=True)
class Target:
    name: str
    facts: dict[str, str]
    entry: InventoryEntry | None


class PatrolRunner:
    def __init__(self, store: Any, fleet: Fleet, engine: Any, checklists: Mapping[str, Checklist], *,
                 entries: Callable[[], dict[str, InventoryEntry]], secret: Callable[[str], str],
                 snmp_get: Callable[..., Any], automation_problem: Callable[[str], str | None] = lambda name: None,
                 concurrency: int = 16, cli_slots: asyncio.Semaphore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.fleet, self.engine, self.checklists = store, fleet, engine, checklists
        self.entries, self.secret, self.snmp_get = entries, secret, snmp_get
        self.automation_problem = automation_problem
        self.slots = asyncio.Semaphore(concurrency)
        self.cli_slots = cli_slots or asyncio.Semaphore(4)
        self.clock = clock

    # --- the run ----------------------------------------------------------------------------------
    async def run(self, run_id: int) -> None:
        run = await self.store.run(lambda c: p.get_run(c, run_id))
        checklist = self.checklists.get(run.checklist) if run else None
        if run is None or checklist is None:
            if run is not None:
                await self.store.run(lambda c: p.update_run(c, run_id, state="failed", finished_at=self.clock()))
            return
        targets = self._targets()
        jobs = [(section, item, target) for section, item in checklist.items() if item.applies_to is not None
                for target in targets if item.applies_to.matches(target.facts)]
        jobs += [(section, item, None) for section, item in checklist.items() if item.applies_to is None]
        await self.store.run(lambda c: p.update_run(c, run_id, state="running", total=len(jobs)))
        await asyncio.gather(*(self._one(run_id, checklist, section, item, target) for section, item, target in jobs))
        await self.store.run(lambda c: p.update_run(c, run_id, state="done", finished_at=self.clock()))
        logger.info("patrol_done", run=run_id, checklist=checklist.name, checks=len(jobs))

    def _targets(self) -> list[Target]:
        entries = self.entries()
        targets = []
        for name, view in sorted(self.fleet.assets.items()):
            entry = entries.get(name)
            facts = {"name": name, "kind": view.kind, "site": view.labels.site or "", "role": view.labels.role or "",
                     "tier": str(view.labels.tier or "normal")}
            if entry is not None:
                facts.update({f"labels.{k}": v for k, v in entry.labels.items()})
            targets.append(Target(name, facts, entry))
        return targets

    async def _one(self, run_id: int, checklist: Checklist, section: Section, item: Item, target: Target | None) -> None:
        asset = target.name if target else ""
        async with self.slots:
            if isinstance(item.method, ManualMethod):
                findings = [j.Finding(key="", value=None, status="not_checked", reason="to be filled in by the patroller")]
                status_override = "pending"
            else:
                assert target is not None
                try:
                    findings = await self._check(item, target)
                except Exception as exc:  # one broken check must not lose the others
                    logger.exception("patrol_check_failed", item=item.id, asset=asset)
                    findings = [j.not_checked(f"the check failed: {type(exc).__name__}: {exc}")]
                status_override = None
        now = self.clock()
        for finding in findings:
            fault = await self._fault(checklist, item, asset, finding, now) if status_override is None else None
            await self.store.run(lambda c, f=finding, fp=fault: p.add_result(
                c, run_id=run_id, section=section.id, item=item.id, asset=asset, key=f.key,
                status=status_override or f.status, value=f.value, evidence=f.evidence, reason=f.reason,
                handling="recorded" if f.status == "abnormal" and status_override is None else "", fault=fp, at=now))

    async def recheck(self, checklist: Checklist, result: p.PatrolResult) -> j.Finding | None:
        """Check one abnormal result again now (its item, asset and key); None when that is not possible
        (the item or the asset is gone, or the check did not say normal or abnormal)."""
        found = checklist.item(result.item)
        target = next((t for t in self._targets() if t.name == result.asset), None)
        if found is None or target is None or isinstance(found[1].method, ManualMethod):
            return None
        try:
            findings = await self._check(found[1], target)
        except Exception:
            logger.exception("patrol_recheck_failed", item=result.item, asset=result.asset)
            return None
        finding = next((f for f in findings if f.key == result.key), None)
        return finding if finding is not None and finding.status != "not_checked" else None

    async def clear(self, result: p.PatrolResult) -> None:
        """The fault an abnormal result opened, cleared: the check is normal again."""
        known = self.engine.faults.get(result.fault) if result.fault else None
        if known is not None:
            fault = FaultFinding(rule=known.rule, asset=known.asset, key=known.key, type=known.type,
                                 severity=known.base_severity, value=None, summary=known.summary, since=self.clock())
            await self.engine.on_event(fault, clears=True)

    def target(self, asset: str) -> Target | None:
        """``asset`` as items see it: from the fleet (an agent, a poller) or, failing that, the inventory."""
        found = next((t for t in self._targets() if t.name == asset), None)
        entry = self.entries().get(asset)
        if found is not None or entry is None:
            return found
        facts = {"name": asset, "kind": entry.kind, "site": entry.site or "", "role": entry.role or "",
                 "tier": str(entry.tier), **{f"labels.{k}": v for k, v in entry.labels.items()}}
        return Target(asset, facts, entry)

    async def check_asset(self, asset: str) -> list[tuple[str, j.Finding]]:
        """Every automated item of every checklist that applies to ``asset``, checked now: an upgrade's
        pre- and post-checks. Each finding comes with ``checklist/item``."""
        target = self.target(asset)
        if target is None:
            return []
        jobs = [(f"{checklist.name}/{item.id}", item) for checklist in self.checklists.values()
                for _, item in checklist.items() if item.automated and item.applies_to is not None
                and item.applies_to.matches(target.facts)]

        async def one(item: Item) -> list[j.Finding]:
            async with self.slots:
                try:
                    return await self._check(item, target)
                except Exception as exc:
                    logger.exception("patrol_check_failed", item=item.id, asset=asset)
                    return [j.not_checked(f"the check failed: {type(exc).__name__}: {exc}")]

        found = await asyncio.gather(*(one(item) for _, item in jobs))
        return [(label, finding) for (label, _), findings in zip(jobs, found, strict=True) for finding in findings]

    # --- checks -----------------------------------------------------------------------------------
    async def _check(self, item: Item, target: Target) -> list[j.Finding]:
        method = item.method
        if isinstance(method, MetricMethod):
            return self._metric(item, target)
        if isinstance(method, HttpMethod):
            return [await self._http(method)]
        if isinstance(method, SshMethod):
            return [await self._ssh(method, target)]
        if isinstance(method, CliMethod):
            return [await self._cli(method, target)]
        if isinstance(method, SnmpGetMethod):
            return [await self._snmp(method, target)]
        return [j.not_checked(f"no way to check a {method.kind} item")]

    def _metric(self, item: Item, target: Target) -> list[j.Finding]:
        assert isinstance(item.method, MetricMethod)
        view = self.fleet.assets.get(target.name)
        if view is None or view.report is None or view.received_at is None:
            return [j.not_checked(f"no report from {target.name} yet: unreachable, or its agent never reported")]
        age = self.clock() - view.received_at
        limit = max(STALE_FLOOR, STALE_INTERVALS * float(view.report.interval))
        if age > limit:
            return [j.not_checked(f"{target.name} unreachable: its last report is {age / 60:.0f} min old")]
        device = view.report.device
        if device is not None and not device.reachable and item.method.metric != "device.reachable":
            return [j.not_checked(f"{target.name} unreachable: {device.error or 'it did not answer its poll'}")]
        report, metric = view.report, item.method.metric
        findings = j.judge(item, measurements(report).get(metric))
        return [dataclasses.replace(f, evidence=j.clip(f"{f.evidence}; {extra}"))
                if f.status != "not_checked" and (extra := describe(report, metric, f.key)) else f for f in findings]

    async def _http(self, method: HttpMethod) -> j.Finding:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=float(method.timeout)),
                                             trust_env=False) as session:
                async with session.get(method.url, allow_redirects=False) as response:
                    body = (await response.content.read(65536)).decode("utf-8", errors="replace")
                    return j.judge_value(method, response.status, body=body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return j.judge_value(method, None, error=f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def _ssh(self, method: SshMethod, target: Target) -> j.Finding:
        from collector.runbooks.ssh import SshError, SshTarget, run_ssh

        entry = target.entry
        if entry is None or entry.ssh is None or entry.address is None:
            return j.not_checked(f"{target.name} has no ssh section in the inventory")
        try:
            ssh = SshTarget(host=entry.address.strip("[]"), port=entry.ssh.port, username=entry.ssh.username,
                            known_hosts=entry.ssh.known_hosts, private_key=self.secret(entry.ssh.key_secret),
                            passphrase=self.secret(entry.ssh.passphrase_secret) if entry.ssh.passphrase_secret else None)
            result = await run_ssh(ssh, list(method.argv), timeout=float(method.timeout))
        except KeyError as exc:
            return j.not_checked(f"the credential store has no secret {exc.args[0]!r}")
        except SshError as exc:
            return j.not_checked(f"{target.name} unreachable over SSH: {exc.reason}")
        return j.judge_output(method, result.exit_status, result.output)

    async def _cli(self, method: CliMethod, target: Target) -> j.Finding:
        from collector.network.cli import CliError
        from collector.runbooks.netcli import run_cli

        entry = target.entry
        if entry is None or entry.cli is None or entry.address is None:
            return j.not_checked(f"{target.name} has no cli section in the inventory")
        try:
            password = self.secret(entry.cli.password_secret) if entry.cli.password_secret else None
            enable = self.secret(entry.cli.enable_secret) if entry.cli.enable_secret else None
            result = await run_cli(entry.address, entry.cli, password, enable, [method.command], config_mode=False,
                                   timeout=float(method.timeout), semaphore=self.cli_slots)
        except KeyError as exc:
            return j.not_checked(f"the credential store has no secret {exc.args[0]!r}")
        except CliError as exc:
            return j.not_checked(f"{target.name} unreachable over SSH: {exc.reason}")
        return j.judge_output(method, None, result.output)

    async def _snmp(self, method: SnmpGetMethod, target: Target) -> j.Finding:
        from collector.network.snmp import SnmpError

        entry = target.entry
        if entry is None or entry.snmp is None or entry.address is None:
            return j.not_checked(f"{target.name} has no snmp section in the inventory")
        oid = method.oid.lstrip(".")
        try:
            values = await self.snmp_get(entry, [oid])
        except (SnmpError, KeyError, ValueError) as exc:
            return j.not_checked(f"{target.name} unreachable over SNMP: {exc}")
        return j.judge_value(method, values.get(oid))

    # --- faults -----------------------------------------------------------------------------------
    async def _fault(self, checklist: Checklist, item: Item, asset: str, finding: j.Finding, now: float) -> str | None:
        if item.on_abnormal is None or not asset or finding.status == "not_checked":
            return None
        what = text_for(item.check, "en")
        fault = FaultFinding(rule=f"patrol:{item.id}", asset=asset, key=finding.key, type=item.on_abnormal.type,
                             severity=item.on_abnormal.level, value=finding.value,
                             summary=f"patrol {checklist.name}: {what}: {finding.evidence}"[:500], since=now)
        if finding.status == "normal":
            if fault.fingerprint in self.engine.faults:
                await self.engine.on_event(fault, clears=True)
            return None
        await self.engine.on_event(fault, ttl=FAULT_TTL)
        if item.on_abnormal.runbook:
            await self._queue_runbook(item.on_abnormal.runbook, asset, fault.fingerprint, now)
        return fault.fingerprint

    async def _queue_runbook(self, name: str, asset: str, fingerprint: str, now: float) -> None:
        problem = self.automation_problem(name)
        if problem:  # the same rule as for incidents: no unapproved changes by itself
            logger.warning("patrol_runbook_not_started", runbook=name, asset=asset, reason=problem)
            return
        known = self.engine.faults.get(fingerprint)
        incident_id = known.incident_id if known is not None else None

        def queue(conn: Any) -> None:
            if any(run.state in rb.PENDING for run in rb.list_runs(conn, asset=asset, runbook=name, limit=20)):
                return
            rb.create_run(conn, runbook=name, asset=asset, incident_id=incident_id, fault=fingerprint,
                          started_by="patrol", automatic=True, variables={}, at=now)

        await self.store.run(queue)
