"""The incident engine's periodic work that evaluates no rules: faults reported by people, manual
faults whose incident was resolved, incidents that stayed quiet long enough, maintenance windows
that ended. :class:`PeriodicWork` is a mixin of :class:`~collector.incidents.engine.IncidentEngine`,
whose ``tick()`` calls these methods under its lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.engine import Connection

from collector.domain import AssetContext, Finding
from collector.incidents import actions
from collector.incidents.lifecycle import Action, IncidentState, auto_resolve_due
from collector.store import incidents as q
from schoolops.wire import Tier

if TYPE_CHECKING:
    from collector.incidents.engine import EngineSettings
    from collector.incidents.maintenance import MaintenanceWindow
    from collector.store.sql import SqlStore

logger = structlog.get_logger("schoolops.incidents")
SYSTEM = "schoolops"  # the actor of what the engine does by itself
MANUAL_RULE = "manual_report"  # the rule of a fault a person reported


class PeriodicWork:
    """The engine's periodic work that evaluates no rules; a mixin of ``IncidentEngine``.

    It expects the class it is mixed into to provide (``IncidentEngine`` does):

    - ``store`` (a :class:`~collector.store.sql.SqlStore`), ``settings`` (``EngineSettings``: its
      ``quiet_period``), ``clock()`` (now, in epoch seconds) and ``_lock`` (the engine's lock, held
      by ``take_fault_reports_now``; ``tick()`` holds it around the others);
    - ``faults``: the active faults by fingerprint, and ``windows``: the maintenance windows as of
      the last tick; ``_was_active``: the ids of the windows active at the previous tick, which
      ``_maintenance_ends`` reads and replaces;
    - ``context(asset)``, the asset's :class:`~collector.domain.AssetContext`;
    - ``_fire(finding, ctx, now)`` and ``_clear(fault, now)``, which open or join an incident for a
      fault and clear one, keeping ``faults`` up to date;
    - ``_record_decision(conn, incident_id, fault, ctx, event, now, *, exclude_window=None)``, which
      records on the incident whether to notify or hold, and why, inside a store transaction.
    """

    store: SqlStore
    settings: EngineSettings
    clock: Callable[[], float]
    faults: dict[str, q.FaultRecord]
    windows: list[MaintenanceWindow]
    _was_active: set[str]
    _lock: asyncio.Lock
    context: Callable[[str], AssetContext]
    _fire: Callable[[Finding, AssetContext, float], Awaitable[None]]
    _clear: Callable[[q.FaultRecord, float], Awaitable[None]]
    _record_decision: Callable[..., None]

    async def _auto_resolve(self, now: float) -> None:
        quiet = self.settings.quiet_period

        def work(conn: Connection) -> list[int]:
            resolved = []
            for incident in q.list_incidents(conn, states=list(q.LIVE), limit=10_000):
                active = sum(1 for f in self.faults.values() if f.incident_id == incident.id)
                if auto_resolve_due(incident.state, active, incident.all_cleared_at, now, quiet):
                    actions.transition(conn, incident.id, Action.RESOLVE, actor=SYSTEM, at=now,
                                       note=f"every fault cleared and stayed clear for {quiet:g} s")
                    resolved.append(incident.id)
            return resolved

        for incident_id in await self.store.run(work):
            logger.info("incident_resolved", incident=incident_id, by=SYSTEM)

    async def _take_fault_reports(self, now: float) -> None:
        for report in await self.store.run(q.pending_fault_reports):
            # a location has no tier of its own: neither raise nor lower what the person reported
            ctx = self.context(report.asset) if report.asset else AssetContext(name="", site=report.site or "",
                                                                                 tier=Tier.IMPORTANT)
            finding = Finding(rule=MANUAL_RULE, asset=report.asset or "", key=f"r{report.id}", type=report.type,
                              severity=report.severity, value=None,
                              summary=f"reported by {report.reporter}: {report.description}", since=report.at)
            await self._fire(finding, ctx, now)
            incident_id = self.faults[finding.fingerprint].incident_id
            assert incident_id is not None
            await self.store.run(lambda c, r=report.id, i=incident_id: q.fault_report_handled(c, r, i))

    async def take_fault_reports_now(self) -> None:
        async with self._lock:
            await self._take_fault_reports(self.clock())

    async def _close_resolved_manual_faults(self, now: float) -> None:
        """A reported fault stays until a person resolves its incident."""
        manual = [f for f in self.faults.values() if f.rule == MANUAL_RULE and f.incident_id is not None]
        for fault in manual:
            incident = await self.store.run(lambda c, i=fault.incident_id: q.get_incident(c, i))
            if incident is not None and incident.state not in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED):
                await self._clear(fault, now)

    async def _maintenance_ends(self, now: float) -> None:
        active = {w.id for w in self.windows if w.active_at(now)}
        ended = [w for w in self.windows if w.id in self._was_active and w.id not in active]
        self._was_active = active
        for window in ended:
            for fault in [f for f in self.faults.values() if window.scope.matches(self.context(f.asset))]:
                if fault.incident_id is None or fault.consequence_of:
                    continue
                ctx = self.context(fault.asset)
                await self.store.run(lambda c, f=fault, x=ctx, w=window: self._record_decision(
                    c, f.incident_id, f, x, f"maintenance window {w.id} ended with the fault still present", now,
                    exclude_window=int(w.id)))
            if window.ended_at is not None or now >= window.ends_at:
                await self.store.run(lambda c, w=window: q.mark_window_end_handled(c, int(w.id), now))
