"""Incident metrics: incidents opened and open by severity and type, each open P1/P2 incident, faults
fired by rule, time to acknowledge/resolve, notifications by channel and outcome, escalation steps
that reached the director.

Acknowledgements, resolutions, notifications and escalation steps are read back from the store on
each tick, so what the CLI (another process), the dispatcher and the escalator wrote is counted as
well as what went through the API. Counting starts at the collector's start: history before it is
the store's, not Prometheus's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.domain import FaultType, Severity
from collector.store.incidents import LIVE
from collector.store.sql import SqlStore
from collector.store.tables import channel_state, incident_events, incidents, notifications

_DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 86400, 7 * 86400)
OUTCOMES = ("sent", "merged", "given_up")  # the outbox's final states
DIRECTOR_KINDS = ("page", "reminder", "progress", "summary", "security_clock")
_PAGED = tuple(s for s in Severity if s is not Severity.INFO)  # info pages nobody
_TITLE_MAX = 120


@dataclass(frozen=True)
class _Snapshot:
    """What one tick reads from the store (one transaction)."""

    live: Sequence[Any]  # (severity, type, count) of open or acknowledged incidents
    major: Sequence[Any]  # the open or acknowledged P1/P2 incidents
    opened: Sequence[Any]  # (severity, type, count) opened since the last read
    acks: Sequence[Any]  # (opened_at, acknowledged_at) since the last read
    resolutions: Sequence[Any]  # (opened_at, resolved_at) since the last read
    steps: Sequence[Any]  # (severity, event data) of escalation steps since the last read
    last_event: int
    outbox: Sequence[Any]  # (channel, state, count, attempts)
    channels: list[str]


class IncidentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge("schoolops_incidents_open", "Open or acknowledged incidents.", ["severity", "type"],
                          registry=registry)
        self.major = Gauge("schoolops_major_incident_opened_timestamp_seconds",
                           "When each open or acknowledged P1/P2 incident was opened (one series per incident).",
                           ["incident", "severity", "type", "asset", "site", "state", "title"], registry=registry)
        self.opened = Counter("schoolops_incidents_opened", "Incidents opened, by severity and type.",
                              ["severity", "type"], registry=registry)
        self.fired = Counter("schoolops_faults_fired", "Faults fired, by rule.", ["rule"], registry=registry)
        self.time_to_ack = Histogram("schoolops_incident_time_to_acknowledge_seconds",
                                     "From opening to first acknowledgement.", buckets=_DURATION_BUCKETS, registry=registry)
        self.time_to_resolve = Histogram("schoolops_incident_time_to_resolve_seconds",
                                         "From opening to resolution.", buckets=_DURATION_BUCKETS, registry=registry)
        self.notifications = Counter(
            "schoolops_notifications", "Notifications that reached a final state (sent, merged into a digest, "
            "given up on that channel), by channel.", ["channel", "outcome"], registry=registry)
        self.notify_failures = Counter("schoolops_notification_failures",
                                       "Failed delivery attempts (retried later, or given up), by channel.",
                                       ["channel"], registry=registry)
        self.to_director = Counter("schoolops_escalations_to_director",
                                   "Escalation steps that reached the director, by severity and kind.",
                                   ["severity", "kind"], registry=registry)
        for severity in Severity:
            for fault_type in FaultType:
                self.open.labels(severity=severity.label, type=fault_type.value)
                self.opened.labels(severity=severity.label, type=fault_type.value)
        for severity in _PAGED:
            for kind in DIRECTOR_KINDS:
                self.to_director.labels(severity=severity.label, kind=kind)
        self._mark: float | None = None  # the last read's time
        self._event_mark: int | None = None  # the last incident event read (ids only grow)
        self._outbox: dict[str, tuple[dict[str, int], int]] | None = None  # per channel: outcomes, failed attempts

    async def refresh(self, store: SqlStore, now: float) -> None:
        mark = self._mark if self._mark is not None else now
        read = await store.run(lambda conn: _read(conn, mark, self._event_mark, now))
        seen = {(Severity(s).label, t): n for s, t, n in read.live}
        for severity in Severity:
            for fault_type in FaultType:
                self.open.labels(severity=severity.label, type=fault_type.value).set(
                    seen.get((severity.label, fault_type.value), 0))
        self.major.clear()  # no await until it is refilled: a scrape never sees the list half made
        for incident_id, severity, fault_type, asset, site, state, title, opened_at in read.major:
            self.major.labels(incident=str(incident_id), severity=Severity(severity).label, type=fault_type,
                              asset=asset, site=site, state=state, title=title[:_TITLE_MAX]).set(opened_at)
        for severity, fault_type, n in read.opened:
            self.opened.labels(severity=Severity(severity).label, type=fault_type).inc(n)
        for opened_at, acknowledged in read.acks:
            self.time_to_ack.observe(max(0.0, acknowledged - opened_at))
        for opened_at, resolved in read.resolutions:
            self.time_to_resolve.observe(max(0.0, resolved - opened_at))
        for severity, data in read.steps:
            step = json.loads(data)
            if step.get("director") and step.get("kind") in DIRECTOR_KINDS:
                self.to_director.labels(severity=Severity(severity).label, kind=step["kind"]).inc()
        self._count_outbox(read.outbox, read.channels)
        self._mark = now
        self._event_mark = read.last_event

    def _count_outbox(self, rows: Sequence[Any], channels: list[str]) -> None:
        """Counters from the outbox's totals: the growth since the last read (the first read is the baseline)."""
        totals: dict[str, tuple[dict[str, int], int]] = {name: ({}, 0) for name in channels}
        for channel, state, n, attempts in rows:
            outcomes, failed = totals.get(channel, ({}, 0))
            outcomes[state] = outcomes.get(state, 0) + n
            # every attempt failed but the one that delivered a sent message
            totals[channel] = (outcomes, failed + int(attempts) - (n if state == "sent" else 0))
        before = self._outbox
        for channel, (outcomes, failed) in totals.items():
            earlier, failed_earlier = before.get(channel, ({}, 0)) if before is not None else ({}, failed)
            for outcome in OUTCOMES:
                child = self.notifications.labels(channel=channel, outcome=outcome)
                if before is not None:
                    child.inc(max(0, outcomes.get(outcome, 0) - earlier.get(outcome, 0)))
            self.notify_failures.labels(channel=channel).inc(max(0, failed - failed_earlier))
        self._outbox = totals


def _read(conn: sa.engine.Connection, mark: float, event_mark: int | None, now: float) -> _Snapshot:
    def since(column: sa.Column[Any]) -> sa.ColumnElement[bool]:
        return (column > mark) & (column <= now)

    by_kind = (incidents.c.severity, incidents.c.type)
    last_event = conn.execute(sa.select(sa.func.max(incident_events.c.id))).scalar() or 0
    steps = [] if event_mark is None else conn.execute(  # the first read is the baseline
        sa.select(incidents.c.severity, incident_events.c.data)
        .join(incidents, incidents.c.id == incident_events.c.incident_id)
        .where((incident_events.c.kind == "escalation") & (incident_events.c.id > event_mark)
               & (incident_events.c.id <= last_event))).all()
    return _Snapshot(
        live=conn.execute(sa.select(*by_kind, sa.func.count()).where(incidents.c.state.in_(LIVE))
                          .group_by(*by_kind)).all(),
        major=conn.execute(sa.select(incidents.c.id, incidents.c.severity, incidents.c.type, incidents.c.asset,
                                     incidents.c.site, incidents.c.state, incidents.c.title, incidents.c.opened_at)
                           .where(incidents.c.state.in_(LIVE) & (incidents.c.severity <= int(Severity.P2)))).all(),
        opened=conn.execute(sa.select(*by_kind, sa.func.count()).where(since(incidents.c.opened_at))
                            .group_by(*by_kind)).all(),
        acks=conn.execute(sa.select(incidents.c.opened_at, incidents.c.acknowledged_at)
                          .where(since(incidents.c.acknowledged_at))).all(),
        resolutions=conn.execute(sa.select(incidents.c.opened_at, incidents.c.resolved_at)
                                 .where(since(incidents.c.resolved_at))).all(),
        steps=list(steps),
        last_event=int(last_event),
        outbox=conn.execute(sa.select(notifications.c.channel, notifications.c.state, sa.func.count(),
                                      sa.func.coalesce(sa.func.sum(notifications.c.attempts), 0))
                            .group_by(notifications.c.channel, notifications.c.state)).all(),
        channels=list(conn.execute(sa.select(channel_state.c.channel)).scalars().all()),
    )
