"""The incident engine: the shell around the pure core.

On every applied report (and on a periodic tick, for silences, quiet periods, maintenance ends
and faults reported by people) it evaluates the asset's rules, diffs the active findings with the
faults it knows, classifies what fired, groups faults into incidents, decides what to notify and
what to hold — and writes all of it, with the reasons, to the store. Delivery is the notifiers'
job; this records ``notify`` / ``held`` events on the incident timeline for them. The periodic
work that evaluates no rules is :class:`~collector.incidents.periodic.PeriodicWork`, mixed in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog
from sqlalchemy.engine import Connection

from collector.calendar import SchoolCalendar
from collector.classify import ClassifyPolicy, ScopeInfo, classify
from collector.domain import AssetContext, Finding, Severity
from collector.fleet import AssetView, Fleet
from collector.incidents import actions, topology
from collector.incidents.decide import Hold, decide
from collector.incidents.flapping import FlapState, observe
from collector.incidents.lifecycle import Action, IncidentState, should_reopen
from collector.incidents.maintenance import MaintenanceWindow, windows_covering
from collector.incidents.metrics import IncidentMetrics
from collector.incidents.periodic import MANUAL_RULE, SYSTEM, PeriodicWork
from collector.incidents.windows import to_window
from collector.rules.evaluate import AssetRuleState, evaluate_asset
from collector.rules.loader import RuleSet
from collector.store import incidents as q
from collector.store.sql import SqlStore
from collector.supervise import every
from schoolops.wire import Tier

logger = structlog.get_logger("schoolops.incidents")


@dataclass(frozen=True)
class EngineSettings:
    quiet_period: float = 300.0  # all faults clear this long → the incident resolves itself
    reopen_window: float = 1800.0  # a fault back within this after resolution reopens the incident
    regroup_window: float = 120.0  # children's incidents this young move under a parent that went down
    tick_interval: float = 5.0


class IncidentEngine(PeriodicWork):
    def __init__(
        self, store: SqlStore, fleet: Fleet, rules: RuleSet, calendar: SchoolCalendar, *,
        policy: ClassifyPolicy | None = None, settings: EngineSettings | None = None,
        metrics: IncidentMetrics | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.fleet, self.calendar = store, fleet, calendar
        self.replace_rules(rules)
        self.policy = policy or ClassifyPolicy()
        self.settings = settings or EngineSettings()
        self.metrics = metrics
        self.clock = clock
        self.faults: dict[str, q.FaultRecord] = {}  # active faults by fingerprint
        self.rule_states: dict[str, AssetRuleState] = {}
        self.flaps: dict[str, FlapState] = {}
        self._incident_of: dict[str, int] = {}  # fingerprint → the incident its last firing joined
        self._event_expiry: dict[str, float] = {}  # event faults (traps, config changes) clear themselves
        self.windows: list[MaintenanceWindow] = []
        self._was_active: set[str] = set()
        self._lock = asyncio.Lock()

    # --- inputs ---------------------------------------------------------------------------------
    async def load(self) -> None:
        self.faults = {f.fingerprint: f for f in await self.store.run(q.active_faults)}
        self._incident_of = {fp: f.incident_id for fp, f in self.faults.items() if f.incident_id is not None}
        rule_ids = {rule.id for rule in self.rules.rules}
        for fp, fault in self.faults.items():  # event faults from before a restart keep clearing themselves
            if fault.rule not in rule_ids and fault.rule != MANUAL_RULE:
                self._event_expiry[fp] = self.clock() + 3600.0

    def replace_rules(self, rules: RuleSet) -> None:
        self.rules = rules
        # an absence rule firing means the asset is down: its children's faults are consequences
        self._down_rules = frozenset(rule.id for rule in rules.rules if rule.kind == "absence" or rule.marks_down)

    async def on_report(self, view: AssetView) -> None:
        async with self._lock:
            await self._evaluate(view.name, self.clock(), observed=True)

    async def on_event(self, finding: Finding, *, clears: bool = False, ttl: float = 3600.0) -> None:
        """A one-off event (a trap, a configuration change): fire its fault, or clear the one it ends.
        Without a clearing event it clears itself ``ttl`` seconds after the last occurrence."""
        async with self._lock:
            now = self.clock()
            known = self.faults.get(finding.fingerprint)
            if clears:
                self._event_expiry.pop(finding.fingerprint, None)
                if known is not None:
                    await self._clear(known, now)
                return
            self._event_expiry[finding.fingerprint] = now + ttl
            ctx = self.context(finding.asset)
            if known is None:
                await self._fire(finding, ctx, now)
            else:
                await self._update(known, finding, ctx, now)

    async def tick(self) -> None:
        async with self._lock:
            now = self.clock()
            for fingerprint in [fp for fp, at in self._event_expiry.items() if at <= now]:
                self._event_expiry.pop(fingerprint)
                if fingerprint in self.faults:
                    await self._clear(self.faults[fingerprint], now)
            self.windows = [to_window(w) for w in await self.store.run(lambda c: q.windows(c))]
            parents = self._parents()  # once per tick: rebuilding it per asset made a tick quadratic in the fleet
            for name in sorted(self.fleet.assets, key=lambda n: topology.depth(parents, n)):  # parents before children
                await self._evaluate(name, now, observed=False)
            await self._take_fault_reports(now)
            await self._close_resolved_manual_faults(now)
            await self._auto_resolve(now)
            await self._maintenance_ends(now)
            if self.metrics:
                await self.metrics.refresh(self.store, now)

    # --- evaluation -----------------------------------------------------------------------------
    def context(self, name: str) -> AssetContext:
        view = self.fleet.assets.get(name)
        if view is None:
            return AssetContext(name=name)
        return AssetContext(name=name, kind=view.kind, site=view.labels.site, role=view.labels.role,
                            tier=Tier(view.labels.tier), parents=view.parents)

    def _parents(self) -> dict[str, tuple[str, ...]]:
        return {name: view.parents for name, view in self.fleet.assets.items()}

    async def _evaluate(self, name: str, now: float, *, observed: bool) -> None:
        view = self.fleet.assets.get(name)
        if view is None:
            return
        ctx = self.context(name)
        previous_state = self.rule_states.get(name, AssetRuleState())
        state, findings = evaluate_asset(self.rules.rules_for(ctx), ctx, view.report, view.received_at, previous_state, now)
        self.rule_states[name] = state
        current = {f.fingerprint: f for f in findings}
        known = {fp: f for fp, f in self.faults.items()
                 if f.asset == name and f.rule != MANUAL_RULE and fp not in self._event_expiry}
        if observed:
            for fp in set(current) | set(known) | {fp for fp in self.flaps if fp.split("|")[1] == name}:
                await self._observe_flap(fp, fp in current, now)
        for fp, finding in current.items():
            if fp in known:
                await self._update(known[fp], finding, ctx, now)
            else:
                await self._fire(finding, ctx, now)
        silent = any(f.rule in self._down_rules for f in current.values())
        for fp in set(known) - set(current):
            if silent and known[fp].rule not in self._down_rules:
                continue  # a silent asset's other faults are unknown, not cleared
            await self._clear(known[fp], now)

    def _scope(self, finding: Finding, ctx: AssetContext) -> ScopeInfo:
        failing = {f.asset for f in self.faults.values() if f.rule == finding.rule} | {ctx.name}
        in_site = [v.name for v in self.fleet.assets.values() if v.labels.site == ctx.site] if ctx.site else [ctx.name]
        siblings = [v.name for v in self.fleet.assets.values() if set(v.parents) & set(ctx.parents)] or [ctx.name]
        return ScopeInfo(
            failing_in_site=len(failing & set(in_site)), assets_in_site=len(in_site),
            failing_siblings=len(failing & set(siblings)), siblings=len(siblings),
        )

    def _classify(self, finding: Finding, ctx: AssetContext, now: float) -> tuple[Severity, str]:
        result = classify(finding, ctx, self._scope(finding, ctx), self.calendar.state_at(now), now=now, policy=self.policy)
        return result.severity, result.reason

    def _down_parent(self, ctx: AssetContext) -> q.FaultRecord | None:
        """The active 'asset down' fault of the nearest ancestor that is down, if any."""
        down = {f.asset: f for f in self.faults.values() if f.rule in self._down_rules and f.incident_id is not None}
        parent = topology.nearest_down({**self._parents(), ctx.name: ctx.parents}, ctx.name, down)
        return down[parent] if parent else None

    async def _fire(self, finding: Finding, ctx: AssetContext, now: float) -> None:
        severity, reason = self._classify(finding, ctx, now)
        parent = None if finding.rule in self._down_rules and not ctx.parents else self._down_parent(ctx)
        fault = q.FaultRecord(
            fingerprint=finding.fingerprint, rule=finding.rule, asset=finding.asset, key=finding.key, type=finding.type,
            base_severity=finding.severity, severity=severity, summary=finding.summary, reason=reason,
            value=finding.value, active=True, since=finding.since, fired_at=now, cleared_at=None, incident_id=None,
            consequence_of=parent.asset if parent else None,
        )
        if parent is not None:
            fault = replace(fault, incident_id=parent.incident_id)
            await self.store.run(lambda c: self._join_as_consequence(c, fault, parent, now))
        else:
            fault = await self.store.run(lambda c: self._open_or_join(c, fault, ctx, now))
        self.faults[fault.fingerprint] = fault
        if fault.incident_id is not None:
            self._incident_of[fault.fingerprint] = fault.incident_id
        if self.metrics:
            self.metrics.fired.labels(rule=fault.rule).inc()
        logger.info("fault_fired", fingerprint=fault.fingerprint, severity=severity.label, incident=fault.incident_id,
                    consequence_of=fault.consequence_of)
        if finding.rule in self._down_rules and fault.consequence_of is None:
            await self._regroup_children(fault, now)

    def _join_as_consequence(self, conn: Connection, fault: q.FaultRecord, parent: q.FaultRecord, now: float) -> None:
        q.save_fault(conn, fault)
        assert fault.incident_id is not None
        decision = decide(severity=fault.severity, event=f"{fault.asset}: {fault.summary}", maintenance=[], flapping=None,
                          parent_incident=str(parent.incident_id), parent_asset=parent.asset, now=now, asset=fault.asset)
        q.add_event(conn, fault.incident_id, now, "consequence", SYSTEM,
                    f"{fault.asset}: {fault.summary} — {decision.reason}", {"fault": fault.fingerprint})

    def _open_or_join(self, conn: Connection, fault: q.FaultRecord, ctx: AssetContext, now: float) -> q.FaultRecord:
        fingerprint = f"{fault.asset}|{fault.rule}" if fault.rule != MANUAL_RULE else f"{fault.asset}|{fault.fingerprint}"
        incident = q.live_incident(conn, fingerprint)
        event = "fault fired"
        if incident is None:
            latest = q.latest_incident(conn, fingerprint)
            if latest and should_reopen(latest.state, latest.resolved_at, now, self.settings.reopen_window):
                incident = actions.transition(conn, latest.id, Action.REOPEN, actor=SYSTEM, at=now,
                                              note=f"{fault.summary} again within {self.settings.reopen_window:g} s")
                event = "reopened"
        if incident is None:
            incident_id = q.insert_incident(conn, {
                "fingerprint": fingerprint, "asset": fault.asset, "site": ctx.site, "rule": fault.rule,
                "type": fault.type.value, "severity": int(fault.severity), "title": f"{fault.asset}: {fault.summary}",
                "reason": fault.reason, "state": IncidentState.OPEN.value, "opened_at": now,
            })
            if incident_id is None:  # another collector opened it a moment ago
                incident = q.live_incident(conn, fingerprint)
                assert incident is not None
            else:
                fault = replace(fault, incident_id=incident_id)
                q.save_fault(conn, fault)
                q.add_event(conn, incident_id, now, "opened", SYSTEM, f"{fault.summary}. {fault.reason}",
                            {"fault": fault.fingerprint, "severity": fault.severity.label})
                self._record_decision(conn, incident_id, fault, ctx, "opened", now)
                return fault
        fault = replace(fault, incident_id=incident.id)
        q.save_fault(conn, fault)
        q.add_event(conn, incident.id, now, "fault_fired", SYSTEM, f"{fault.summary}. {fault.reason}",
                    {"fault": fault.fingerprint, "severity": fault.severity.label})
        values: dict[str, object] = {"all_cleared_at": None}
        if fault.severity < incident.severity:
            values.update(severity=int(fault.severity), reason=fault.reason)
            event = f"severity raised to {fault.severity.label}"
        q.update_incident(conn, incident.id, incident.version, **values)
        self._record_decision(conn, incident.id, fault, ctx, event, now)
        return fault

    def _record_decision(self, conn: Connection, incident_id: int, fault: q.FaultRecord, ctx: AssetContext,
                         event: str, now: float, *, exclude_window: int | None = None) -> None:
        current = [to_window(w) for w in q.windows(conn, not_handled_only=True)]  # as of this transaction
        windows = [w for w in windows_covering(current, ctx, now) if w.id != str(exclude_window)]
        decision = decide(severity=fault.severity, event=event, maintenance=windows, asset=ctx.name or ctx.site,
                          flapping=self.flaps.get(fault.fingerprint), parent_incident=None, parent_asset=None, now=now)
        kind = "notify" if decision.notify else "held"
        q.add_event(conn, incident_id, now, kind, SYSTEM, decision.reason,
                    {"event": event, "severity": fault.severity.label, "hold": decision.hold.value if decision.hold else None,
                     "fault": fault.fingerprint})
        incident = q.get_incident(conn, incident_id)
        if incident is not None:
            values: dict[str, object] = {"hold": None if decision.notify else decision.reason}
            if decision.notify and incident.notify_since is None:
                values["notify_since"] = now  # escalation steps count from here
            q.update_incident(conn, incident_id, incident.version, **values)

    async def _update(self, fault: q.FaultRecord, finding: Finding, ctx: AssetContext, now: float) -> None:
        severity, reason = self._classify(finding, ctx, now)
        updated = replace(fault, value=finding.value, summary=finding.summary, base_severity=finding.severity)
        if severity == fault.severity and finding.summary == fault.summary:
            self.faults[fault.fingerprint] = updated
            return
        updated = replace(updated, severity=severity, reason=reason)
        self.faults[fault.fingerprint] = updated

        def write(conn: Connection) -> None:
            q.save_fault(conn, updated)
            if severity == fault.severity or updated.incident_id is None or updated.consequence_of:
                return
            incident = q.get_incident(conn, updated.incident_id)
            if incident is None or incident.state not in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED):
                return
            worst = min(f.severity for f in self.faults.values() if f.incident_id == incident.id)
            verb = "raised" if severity < fault.severity else "lowered"
            q.add_event(conn, incident.id, now, "severity_changed", SYSTEM,
                        f"{updated.summary}: severity {verb} to {severity.label}. {reason}",
                        {"from": fault.severity.label, "to": severity.label})
            if worst != incident.severity:
                q.update_incident(conn, incident.id, incident.version, severity=int(worst), reason=reason)
                if worst < incident.severity:
                    self._record_decision(conn, incident.id, updated, ctx, f"severity raised to {worst.label}", now)

        await self.store.run(write)

    async def _clear(self, fault: q.FaultRecord, now: float) -> None:
        cleared = replace(fault, active=False, cleared_at=now)
        self.faults.pop(fault.fingerprint, None)
        still_active = any(f.incident_id == fault.incident_id for f in self.faults.values())

        def write(conn: Connection) -> None:
            q.save_fault(conn, cleared)
            if fault.incident_id is None:
                return
            q.add_event(conn, fault.incident_id, now, "fault_cleared", SYSTEM, f"cleared: {fault.summary}",
                        {"fault": fault.fingerprint})
            incident = q.get_incident(conn, fault.incident_id)
            if incident is not None and not still_active and incident.all_cleared_at is None:
                q.update_incident(conn, incident.id, incident.version, all_cleared_at=now)

        await self.store.run(write)
        logger.info("fault_cleared", fingerprint=fault.fingerprint, incident=fault.incident_id)

    async def _observe_flap(self, fingerprint: str, problem: bool, now: float) -> None:
        before = self.flaps.get(fingerprint, FlapState())
        after = observe(before, problem)
        if not any(after.history) and not after.flapping:
            self.flaps.pop(fingerprint, None)
            return
        self.flaps[fingerprint] = after
        incident_id = self._incident_of.get(fingerprint)
        if after.flapping == before.flapping or incident_id is None:
            return
        rule, asset, key = fingerprint.split("|", 2)
        what = f"{rule} on {asset}" + (f" ({key})" if key else "")
        text = (f"{what}: flapping ({after.percent:.0f}% state changes); notifications held" if after.flapping
                else f"{what}: no longer flapping ({after.percent:.0f}% state changes)")

        def write(conn: Connection) -> None:
            q.add_event(conn, incident_id, now, "flapping" if after.flapping else "flapping_stopped", SYSTEM, text,
                        {"fault": fingerprint, "percent": round(after.percent, 1)})
            incident = q.get_incident(conn, incident_id)
            if incident is not None:
                q.update_incident(conn, incident_id, incident.version,
                                  hold=f"held: {text}" if after.flapping else None)

        await self.store.run(write)

    async def _regroup_children(self, parent_fault: q.FaultRecord, now: float) -> None:
        """A parent went down after some children already opened incidents: make those consequences."""
        parents = self._parents()
        descendants = {n for n in self.fleet.assets if parent_fault.asset in topology.ancestors(parents, n)}
        moved = [f for f in self.faults.values() if f.asset in descendants and f.incident_id is not None
                 and f.consequence_of is None and now - f.fired_at <= self.settings.regroup_window]
        for fault in moved:
            child = replace(fault, incident_id=parent_fault.incident_id, consequence_of=parent_fault.asset)
            self.faults[fault.fingerprint] = child
            old_incident = fault.incident_id

            def write(conn: Connection, child: q.FaultRecord = child, old: int | None = old_incident) -> None:
                self._join_as_consequence(conn, child, parent_fault, now)
                assert old is not None
                if not any(f.incident_id == old for f in self.faults.values()):
                    incident = q.get_incident(conn, old)
                    if incident and incident.state in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED):
                        actions.transition(conn, old, Action.RESOLVE, actor=SYSTEM, at=now,
                                           note=f"merged into incident {parent_fault.incident_id}: "
                                                f"a consequence of {parent_fault.asset} being down")

            await self.store.run(write)

    async def run(self) -> None:
        await every(self.settings.tick_interval, self.tick, name="incident-engine")


__all__ = ["EngineSettings", "Hold", "IncidentEngine"]
