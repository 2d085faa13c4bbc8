"""One asset's part of an upgrade phase: its steps through the runbooks' transports, its checks.

:class:`PhaseWork` renders a phase's steps for one asset (the same rendering as runbooks and dry
runs: secrets masked in what is shown and redacted from outputs), carries them out in order and
records each as an ``upgrade_steps`` row. The checks (patrol items, free disk, before/after
comparison, the backup file) are recorded the same way, as rows with their own action names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from collector import CollectorError
from collector.fleet import Fleet
from collector.notify.model import Language, MessageKind
from collector.rules.measure import measurements
from collector.runbooks.executors import EXECUTORS, Outcome, World
from collector.runbooks.model import NotifyParams, OnFailure, Runbook, SshParams
from collector.runbooks.notices import RunbookNotices
from collector.runbooks.render import PlannedStep, RenderError, Scope, plan, redact
from collector.store import runbooks as r
from collector.store import upgrades as u

logger = structlog.get_logger("schoolops.upgrades")
STEP_GRACE = 5.0


class UpgradeWorld(World, Protocol):
    """The runbook service's world, plus how to describe an asset to templates."""

    async def scope(self, run: r.RunRecord) -> Scope: ...


class PatrolChecks(Protocol):
    """What upgrades use of the patrol: the items that apply to an asset, checked now."""

    async def check_asset(self, asset: str) -> list[tuple[str, Any]]: ...


@dataclass
class AssetResult:
    """How one asset's phase went: ``ok`` and the failure that stopped it, outputs by step name."""

    ok: bool = True
    failure: str = ""
    failed_step: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    argv: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ssh steps' rendered arguments

    def fail(self, why: str, step: str = "") -> None:
        if self.ok:
            self.ok, self.failure, self.failed_step = False, why, step


class PhaseWork:
    """Carries out and records steps and checks of one upgrade request."""

    def __init__(self, store: Any, world: UpgradeWorld, fleet: Fleet, notices: RunbookNotices, record: u.UpgradeRecord,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.store, self.world, self.fleet, self.notices, self.record = store, world, fleet, notices, record
        self.clock = clock

    def _run(self, asset: str) -> r.RunRecord:
        """What the runbook transports expect to act for: this request, on ``asset``."""
        up = self.record
        return r.RunRecord(id=up.id, runbook=up.plan, asset=asset, incident_id=None, fault=None, parent_run=None,
                           started_by=up.requested_by, automatic=False, state="running", variables={},
                           requested_at=up.requested_at, started_at=up.started_at, finished_at=None, next_step=0,
                           result=None)

    async def planned(self, runbook: Runbook, asset: str, *, reveal: bool = True) -> list[PlannedStep]:
        scope = await self.world.scope(self._run(asset))
        return plan(runbook, scope, reveal=self.world.secret if reveal else None)

    async def steps(self, runbook: Runbook, asset: str, phase: str, batch: int | None) -> AssetResult:
        """Every step of ``runbook`` on ``asset`` in order; the first failure stops them unless the step
        says ``on_failure: continue``."""
        result = AssetResult()
        if not runbook.steps:
            return result
        try:
            steps = await self.planned(runbook, asset)
        except (RenderError, KeyError) as exc:
            why = str(exc) if isinstance(exc, RenderError) else f"the credential store has no secret {exc.args[0]!r}"
            await self.note(phase, batch, asset, "render", "render", False, why)
            result.fail(why)
            return result
        for step in steps:
            outcome = await self.perform(step, asset, phase, batch)
            if outcome.ok and step.verify is not None:
                outcome = await self.perform(step.verify, asset, phase, batch)
            result.outputs[step.name] = outcome.output
            if isinstance(step.params, SshParams):
                result.argv[step.name] = step.params.argv
            if not outcome.ok:
                why = f"{asset}: step {step.name} {outcome.status.replace('_', ' ')}: {outcome.detail or 'no detail'}"
                if step.on_failure == OnFailure.CONTINUE:
                    continue
                result.fail(why, step.name)
                break
        return result

    async def perform(self, step: PlannedStep, asset: str, phase: str, batch: int | None) -> Outcome:
        started, clock = self.clock(), time.monotonic()
        try:
            async with asyncio.timeout(step.timeout + STEP_GRACE):
                if isinstance(step.params, NotifyParams):
                    outcome = await self._notify(step.params, step.name, asset)
                else:
                    outcome = await EXECUTORS[step.action](step, self._run(asset), self.world)
        except TimeoutError:
            outcome = Outcome(False, timed_out=True, detail=f"no result within {step.timeout:g}s; stopped")
        except CollectorError as exc:
            outcome = Outcome(False, detail=str(exc))
        output, detail = redact(outcome.output, step.secrets), redact(outcome.detail, step.secrets)
        await self.store.run(lambda c: u.add_step(
            c, upgrade_id=self.record.id, phase=phase, batch=batch, asset=asset, name=step.name, action=step.action,
            command=step.shown, status=outcome.status, exit_status=outcome.exit_status, output=output, detail=detail,
            started_at=started, duration=time.monotonic() - clock))
        logger.info("upgrade_step", upgrade=self.record.id, phase=phase, asset=asset, step=step.name,
                    status=outcome.status)
        return Outcome(outcome.ok, output, outcome.exit_status, detail, outcome.timed_out)

    async def note(self, phase: str, batch: int | None, asset: str, name: str, action: str, ok: bool, detail: str,
                   *, output: str = "") -> bool:
        """Record a check (or a condition) that is not a step: patrol item, free disk, comparison..."""
        now = self.clock()
        await self.store.run(lambda c: u.add_step(
            c, upgrade_id=self.record.id, phase=phase, batch=batch, asset=asset, name=name, action=action, command="",
            status="ok" if ok else "failed", exit_status=None, output=output, detail=detail, started_at=now,
            duration=0.0))
        return ok

    async def _notify(self, params: NotifyParams, step: str, asset: str) -> Outcome:
        up = self.record

        def text(language: Language) -> tuple[str, str]:
            subject = {"zh-CN": f"升级 {up.plan}（{asset}）", "zh-TW": f"升級 {up.plan}（{asset}）"}.get(
                language.value, f"Upgrade {up.plan} ({asset})")
            return subject, params.text_for(language.value)

        sent = await self.store.run(lambda c: self.notices.send(
            c, targets=params.to, incident_id=None, key=f"upgrade:{up.id}:{asset}:{step}", kind=MessageKind.PAGE,
            severity=None, text=text, now=self.clock()))
        if not sent.names:
            return Outcome(False, detail="nobody could be notified (no on-call file, or no contact for these targets)")
        return Outcome(True, detail=f"sent to {sent}")

    # --- what the agent's latest report says -------------------------------------------------------
    def value(self, asset: str, metric: str, key: str) -> tuple[float | None, float]:
        """A measurement from ``asset``'s latest report, and when that report arrived (0: none)."""
        view = self.fleet.assets.get(asset)
        if view is None or view.report is None:
            return None, 0.0
        values = dict(measurements(view.report).get(metric, []))
        return values.get(key), view.received_at or 0.0

    def reports(self, asset: str) -> bool:
        view = self.fleet.assets.get(asset)
        return view is not None and view.report is not None

    async def fresh_report(self, asset: str, since: float, wait: float) -> bool:
        """Wait (at most ``wait`` seconds) for a report from ``asset`` that arrived after ``since``."""
        deadline = time.monotonic() + wait
        while True:
            view = self.fleet.assets.get(asset)
            if view is not None and (view.received_at or 0.0) > since:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.5)
