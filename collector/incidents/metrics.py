"""Incident metrics: open incidents by severity and type, faults fired by rule, time to acknowledge/resolve.

Acknowledgements and resolutions are read back from the store on each tick, so those made with the
CLI (another process) are counted as well as those made through the API.
"""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.domain import FaultType, Severity
from collector.store.incidents import LIVE
from collector.store.sql import SqlStore
from collector.store.tables import incidents

_DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 86400, 7 * 86400)


class IncidentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge("schoolops_incidents_open", "Open or acknowledged incidents.", ["severity", "type"],
                          registry=registry)
        self.fired = Counter("schoolops_faults_fired", "Faults fired, by rule.", ["rule"], registry=registry)
        self.time_to_ack = Histogram("schoolops_incident_time_to_acknowledge_seconds",
                                     "From opening to first acknowledgement.", buckets=_DURATION_BUCKETS, registry=registry)
        self.time_to_resolve = Histogram("schoolops_incident_time_to_resolve_seconds",
                                         "From opening to resolution.", buckets=_DURATION_BUCKETS, registry=registry)
        for severity in Severity:
            for fault_type in FaultType:
                self.open.labels(severity=severity.label, type=fault_type.value)
        self._ack_mark: float | None = None
        self._resolve_mark: float | None = None

    async def refresh(self, store: SqlStore, now: float) -> None:
        ack_mark = self._ack_mark if self._ack_mark is not None else now
        resolve_mark = self._resolve_mark if self._resolve_mark is not None else now

        def read(conn: sa.engine.Connection) -> tuple[list, list, list]:
            counts = conn.execute(
                sa.select(incidents.c.severity, incidents.c.type, sa.func.count())
                .where(incidents.c.state.in_(LIVE)).group_by(incidents.c.severity, incidents.c.type)
            ).all()
            acks = conn.execute(sa.select(incidents.c.opened_at, incidents.c.acknowledged_at).where(
                (incidents.c.acknowledged_at > ack_mark) & (incidents.c.acknowledged_at <= now))).all()
            resolutions = conn.execute(sa.select(incidents.c.opened_at, incidents.c.resolved_at).where(
                (incidents.c.resolved_at > resolve_mark) & (incidents.c.resolved_at <= now))).all()
            return counts, acks, resolutions

        counts, acks, resolutions = await store.run(read)
        seen = {(Severity(s).label, t): n for s, t, n in counts}
        for severity in Severity:
            for fault_type in FaultType:
                self.open.labels(severity=severity.label, type=fault_type.value).set(
                    seen.get((severity.label, fault_type.value), 0))
        for opened, acknowledged in acks:
            self.time_to_ack.observe(max(0.0, acknowledged - opened))
        for opened, resolved in resolutions:
            self.time_to_resolve.observe(max(0.0, resolved - opened))
        self._ack_mark = self._resolve_mark = now
