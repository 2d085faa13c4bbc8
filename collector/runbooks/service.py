"""The runbook service in the collector: triggers, the queue, approvals' expiry, and the World steps act on.

Every tick it (1) ends runs whose approval expired, (2) starts the automatic runbooks that live
incidents call for, within the attempt budget, and (3) executes queued runs (each as a task; a
run whose asset is locked stays queued until the lock is free). At start, a run that was
executing when the collector stopped is marked interrupted: a step may have half-run, so it is
never resumed blindly; runs queued or waiting for approval carry on, their locks kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from collector.fleet import Fleet
from collector.incidents.engine import IncidentEngine
from collector.inventory import InventoryEntry
from collector.notify.model import Language, MessageKind
from collector.runbooks.model import NotifyParams, Runbook
from collector.runbooks.notices import RunbookNotices, phrase
from collector.runbooks.render import Scope
from collector.runbooks.runner import Runner
from collector.runbooks.safety import (
    TriggerFacts,
    automation_problem,
    budget_left,
    matches,
)
from collector.runbooks.scope import build_scope, labels_of
from collector.store import incidents as q
from collector.store import runbooks as r
from collector.supervise import every
from schoolops.wire import Report

logger = structlog.get_logger("schoolops.runbooks")
SYSTEM = "schoolops"


@dataclass(frozen=True)
class RunbookSettings:
    attempts: int = 3  # automatic runs per (asset, runbook) ...
    attempt_window: float = 3600.0  # ... in this long; then stop and escalate
    retry_after: float = 60.0  # after an automatic run that did not fix it, wait this long before the next
    tick_interval: float = 1.0


class RunbookService:
    def __init__(self, store: Any, fleet: Fleet, engine: IncidentEngine, runbooks: dict[str, Runbook], *,
                 entries: list[InventoryEntry], secret: Callable[[str], str], notices: RunbookNotices,
                 settings: RunbookSettings | None = None, cli_concurrency: int = 4,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.fleet, self.engine, self.runbooks = store, fleet, engine, runbooks
        self.entries = {e.name: e for e in entries}
        self._secret, self.notices = secret, notices
        self.settings = settings or RunbookSettings()
        self.clock = clock
        self.cli_slots = asyncio.Semaphore(cli_concurrency)
        self.runner = Runner(store, runbooks, self, notices, clock=clock)
        self._tasks: dict[int, asyncio.Task[str]] = {}
        self._snmp_engine: Any = None
        self._wake = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.run(self._recover)

    def _recover(self, conn: Connection) -> None:
        for run in r.list_runs(conn, states=("running",), limit=10000):
            self.runner._end(conn, run, "interrupted", "the collector stopped during the run; it was not resumed "
                             "because a step may have half-run: check the asset and start it again by hand")

    async def run(self) -> None:
        await every(self.settings.tick_interval, self.tick, name="runbooks")

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def replace_runbooks(self, runbooks: dict[str, Runbook]) -> None:
        """Runs already going keep the steps they rendered; new and resumed runs use these."""
        self.runbooks = self.runner.runbooks = runbooks

    def apply_inventory(self, entries: list[InventoryEntry]) -> None:
        self.entries = {e.name: e for e in entries}

    async def tick(self) -> None:
        await self.store.run(self.runner.expire)
        await self._triggers()
        queued = await self.store.run(lambda c: r.list_runs(c, states=("queued",), limit=1000))
        for run in sorted(queued, key=lambda x: x.id):
            if run.id not in self._tasks and run.parent_run is None:
                task = asyncio.create_task(self.runner.execute(run.id), name=f"runbook-run-{run.id}")
                self._tasks[run.id] = task
                task.add_done_callback(lambda _t, i=run.id: self._tasks.pop(i, None))

    # --- triggers -------------------------------------------------------------------------------
    async def _triggers(self) -> None:
        automatic = [rb for rb in self.runbooks.values() if rb.automatic]
        if not automatic:
            return
        faults = [f for f in self.engine.faults.values() if f.incident_id is not None and f.consequence_of is None]
        candidates = []
        for fault in faults:
            facts = TriggerFacts(severity=fault.severity, type=fault.type, rule=fault.rule,
                                 labels=labels_of(self._known(fault.asset), self.entries.get(fault.asset)))
            candidates += [(fault, rb) for rb in automatic if rb.when is not None and matches(rb.when, facts)]
        if candidates:
            await self.store.run(lambda c: self._start_matching(c, candidates))

    def _start_matching(self, conn: Connection, candidates: list[tuple[q.FaultRecord, Runbook]]) -> None:
        now = self.clock()
        settings = self.settings
        for fault, runbook in candidates:
            assert fault.incident_id is not None
            incident = q.get_incident(conn, fault.incident_id)
            if incident is None or incident.state.value not in q.LIVE or incident.hold is not None:
                continue  # maintenance, flapping: nothing starts by itself
            runs = r.list_runs(conn, asset=fault.asset, runbook=runbook.name, limit=50)
            if any(run.state in r.PENDING for run in runs):
                continue
            last = next((run for run in runs if run.automatic and run.incident_id == incident.id), None)
            if last is not None and last.state in ("denied", "expired", "refused"):
                continue  # a person said no, or nobody said yes: not again by itself
            if last is not None and (last.finished_at or now) > now - settings.retry_after:
                continue
            problem = automation_problem(runbook, self.runbooks)
            if problem:
                self._refuse_once(conn, incident.id, fault, runbook, problem, now)
                continue
            started = r.automatic_starts(conn, fault.asset, runbook.name, now - settings.attempt_window)
            if budget_left(started, now, limit=settings.attempts, window=settings.attempt_window) == 0:
                reason = (f"{len(started)} automatic runs in the past {settings.attempt_window / 60:g} minutes did not "
                          f"fix it; no further automatic attempts")
                self.notices.escalate(conn, incident_id=incident.id, key=f"runbook-budget:{runbook.name}:{min(started):.0f}",
                                      runbook=runbook.name, asset=fault.asset, run_id=last.id if last else 0,
                                      reason=reason, now=now)
                continue
            run_id = r.create_run(conn, runbook=runbook.name, asset=fault.asset, incident_id=incident.id,
                                  fault=fault.fingerprint, started_by=SYSTEM, automatic=True, variables={}, at=now)
            logger.info("runbook_triggered", run=run_id, runbook=runbook.name, incident=incident.id,
                        attempt=len(started) + 1)

    def _refuse_once(self, conn: Connection, incident_id: int, fault: q.FaultRecord, runbook: Runbook, problem: str,
                     now: float) -> None:
        if any(run.state == "refused" for run in r.list_runs(conn, incident_id=incident_id, runbook=runbook.name)):
            return
        run_id = r.create_run(conn, runbook=runbook.name, asset=fault.asset, incident_id=incident_id,
                              fault=fault.fingerprint, started_by=SYSTEM, automatic=True, variables={}, at=now,
                              state="refused")
        r.update_run(conn, run_id, result=problem, finished_at=now)
        q.add_event(conn, incident_id, now, "runbook", SYSTEM, f"{runbook.name} not started: {problem}", {"run": run_id})

    # --- the World steps act on -----------------------------------------------------------------
    def _known(self, asset: str) -> dict[str, str | None]:
        view = self.fleet.assets.get(asset)
        if view is None:
            return {}
        return {"kind": view.kind, "site": view.labels.site, "role": view.labels.role, "tier": view.labels.tier}

    def entry(self, asset: str) -> InventoryEntry | None:
        return self.entries.get(asset)

    def secret(self, name: str) -> str:
        return self._secret(name)

    def fault_active(self, fingerprint: str) -> bool:
        return fingerprint in self.engine.faults

    def report(self, asset: str) -> tuple[Report | None, float]:
        view = self.fleet.assets.get(asset)
        if view is None or view.report is None:
            return None, 0.0
        return view.report, view.received_at or 0.0

    async def scope(self, run: r.RunRecord) -> Scope:
        def load(conn: Connection) -> tuple[q.IncidentRecord | None, q.FaultRecord | None]:
            incident = q.get_incident(conn, run.incident_id) if run.incident_id is not None else None
            fault = None
            if incident is not None:
                faults = q.incident_faults(conn, incident.id)
                fault = next((f for f in faults if f.fingerprint == run.fault), None)
            return incident, fault

        incident, fault = await self.store.run(load)
        return build_scope(run.asset, known=self._known(run.asset), entry=self.entries.get(run.asset),
                           incident=incident, fault=fault, variables=run.variables)

    async def notify(self, params: NotifyParams, run: r.RunRecord) -> str:
        def text(language: Language) -> tuple[str, str]:
            return phrase("subject.notify", language, runbook=run.runbook, asset=run.asset), params.text_for(language.value)

        def send(conn: Connection) -> str:
            incident = q.get_incident(conn, run.incident_id) if run.incident_id is not None else None
            sent = self.notices.send(conn, targets=params.to, incident_id=run.incident_id, key=f"run:{run.id}",
                                     kind=MessageKind.PAGE, severity=int(incident.severity) if incident else None,
                                     text=text, now=self.clock())
            return str(sent)

        result: str = await self.store.run(send)
        return result

    async def snmp_get(self, entry: InventoryEntry, oids: list[str]) -> dict[str, Any]:
        from pysnmp.hlapi.v3arch import asyncio as hl

        from collector.network.snmp import Credentials, get_values

        assert entry.snmp is not None and entry.address is not None
        if self._snmp_engine is None:
            self._snmp_engine = hl.SnmpEngine()
        creds = Credentials.from_config(entry.snmp, self.secret)
        return await get_values(self._snmp_engine, entry.address, entry.snmp, creds, oids)
