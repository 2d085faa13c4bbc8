"""Incident, fault, timeline, preventive-measure, maintenance and audit queries.

Plain functions of a connection, so the async engine and the CLI share them. Every change to an
incident is compare-and-set on its ``version``: a second collector, or a restart in the middle of
a change, never applies a transition twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.domain import FaultType, Severity
from collector.incidents.lifecycle import IncidentState
from collector.store.tables import (
    audit_log,
    fault_reports,
    faults,
    incident_events,
    incidents,
    maintenance_windows,
    preventive_measures,
)

LIVE = (IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value)


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    fingerprint: str
    asset: str
    site: str
    rule: str
    type: FaultType
    severity: Severity
    title: str
    reason: str
    state: IncidentState
    version: int
    owner: str | None
    opened_at: float
    acknowledged_at: float | None
    acknowledged_by: str | None
    resolved_at: float | None
    resolved_by: str | None
    reviewed_at: float | None
    reviewed_by: str | None
    closed_at: float | None
    closed_by: str | None
    all_cleared_at: float | None
    rca: str | None
    hold: str | None
    notify_since: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> IncidentRecord:
        data = dict(row._mapping)
        data["type"] = FaultType(data["type"])
        data["severity"] = Severity(data["severity"])
        data["state"] = IncidentState(data["state"])
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the API and the CLI alike."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.update(severity=self.severity.label, type=self.type.value, state=self.state.value)
        return data


@dataclass(frozen=True)
class FaultRecord:
    fingerprint: str
    rule: str
    asset: str
    key: str
    type: FaultType
    base_severity: Severity
    severity: Severity
    summary: str
    reason: str
    value: float | None
    active: bool
    since: float
    fired_at: float
    cleared_at: float | None
    incident_id: int | None
    consequence_of: str | None

    @classmethod
    def from_row(cls, row: Any) -> FaultRecord:
        data = dict(row._mapping)
        data["type"] = FaultType(data["type"])
        data["base_severity"] = Severity(data["base_severity"])
        data["severity"] = Severity(data["severity"])
        data["active"] = bool(data["active"])
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return {**self.values(), "severity": self.severity.label, "base_severity": self.base_severity.label}

    def values(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint, "rule": self.rule, "asset": self.asset, "key": self.key,
            "type": self.type.value, "base_severity": int(self.base_severity), "severity": int(self.severity),
            "summary": self.summary, "reason": self.reason, "value": self.value, "active": self.active,
            "since": self.since, "fired_at": self.fired_at, "cleared_at": self.cleared_at,
            "incident_id": self.incident_id, "consequence_of": self.consequence_of,
        }


@dataclass(frozen=True)
class Event:
    id: int
    incident_id: int
    at: float
    kind: str
    actor: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Measure:
    id: int
    incident_id: int
    description: str
    owner: str
    due: str
    done_at: float | None
    done_by: str | None
    created_at: float
    created_by: str


@dataclass(frozen=True)
class WindowRecord:
    id: int
    scope: dict[str, Any]
    starts_at: float
    ends_at: float
    owner: str
    reason: str
    recurrence: dict[str, Any] | None
    ended_at: float | None
    end_handled_at: float | None
    created_at: float
    created_by: str


# --- incidents ------------------------------------------------------------------------------------


def insert_incident(conn: Connection, values: Mapping[str, Any]) -> int | None:
    """Open an incident; None if another writer opened the live one for this fingerprint first."""
    try:
        with conn.begin_nested():
            result = conn.execute(incidents.insert().values(version=1, **values))
    except sa.exc.IntegrityError:
        return None
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def get_incident(conn: Connection, incident_id: int) -> IncidentRecord | None:
    row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).one_or_none()
    return IncidentRecord.from_row(row) if row else None


def live_incident(conn: Connection, fingerprint: str) -> IncidentRecord | None:
    row = conn.execute(
        sa.select(incidents).where((incidents.c.fingerprint == fingerprint) & incidents.c.state.in_(LIVE))
    ).one_or_none()
    return IncidentRecord.from_row(row) if row else None


def latest_incident(conn: Connection, fingerprint: str) -> IncidentRecord | None:
    row = conn.execute(
        sa.select(incidents).where(incidents.c.fingerprint == fingerprint).order_by(incidents.c.id.desc()).limit(1)
    ).one_or_none()
    return IncidentRecord.from_row(row) if row else None


def list_incidents(
    conn: Connection, *, states: list[str] | None = None, asset: str | None = None, site: str | None = None,
    max_severity: int | None = None, limit: int = 200,
) -> list[IncidentRecord]:
    query = sa.select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    if states:
        query = query.where(incidents.c.state.in_(states))
    if asset:
        query = query.where(incidents.c.asset == asset)
    if site:
        query = query.where(incidents.c.site == site)
    if max_severity is not None:
        query = query.where(incidents.c.severity <= max_severity)
    return [IncidentRecord.from_row(row) for row in conn.execute(query)]


def update_incident(conn: Connection, incident_id: int, version: int, **values: Any) -> bool:
    """Compare-and-set: applies only if nobody changed the incident since ``version`` was read."""
    result = conn.execute(
        incidents.update()
        .where((incidents.c.id == incident_id) & (incidents.c.version == version))
        .values(version=incidents.c.version + 1, **values)
    )
    return result.rowcount == 1


def add_event(
    conn: Connection, incident_id: int, at: float, kind: str, actor: str, text: str, data: Mapping[str, Any] | None = None
) -> None:
    conn.execute(
        incident_events.insert().values(
            incident_id=incident_id, at=at, kind=kind, actor=actor, text=text, data=json.dumps(dict(data or {}))
        )
    )


def events(conn: Connection, incident_id: int) -> list[Event]:
    rows = conn.execute(
        sa.select(incident_events).where(incident_events.c.incident_id == incident_id).order_by(incident_events.c.id)
    )
    return [Event(r.id, r.incident_id, r.at, r.kind, r.actor, r.text, json.loads(r.data)) for r in rows]


# --- faults ---------------------------------------------------------------------------------------


def save_fault(conn: Connection, fault: FaultRecord) -> None:
    values = fault.values()
    if conn.execute(faults.update().where(faults.c.fingerprint == fault.fingerprint).values(**values)).rowcount == 0:
        conn.execute(faults.insert().values(**values))


def active_faults(conn: Connection) -> list[FaultRecord]:
    return [FaultRecord.from_row(r) for r in conn.execute(sa.select(faults).where(faults.c.active.is_(True)))]


def incident_faults(conn: Connection, incident_id: int) -> list[FaultRecord]:
    rows = conn.execute(sa.select(faults).where(faults.c.incident_id == incident_id).order_by(faults.c.fired_at))
    return [FaultRecord.from_row(r) for r in rows]


# --- preventive measures --------------------------------------------------------------------------


def add_measure(conn: Connection, incident_id: int, description: str, owner: str, due: str, at: float, actor: str) -> int:
    result = conn.execute(
        preventive_measures.insert().values(
            incident_id=incident_id, description=description, owner=owner, due=due, created_at=at, created_by=actor
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def measures(conn: Connection, incident_id: int | None = None, *, open_only: bool = False) -> list[Measure]:
    query = sa.select(preventive_measures).order_by(preventive_measures.c.due, preventive_measures.c.id)
    if incident_id is not None:
        query = query.where(preventive_measures.c.incident_id == incident_id)
    if open_only:
        query = query.where(preventive_measures.c.done_at.is_(None))
    return [Measure(**row._mapping) for row in conn.execute(query)]


def complete_measure(conn: Connection, measure_id: int, at: float, actor: str) -> bool:
    result = conn.execute(
        preventive_measures.update()
        .where((preventive_measures.c.id == measure_id) & preventive_measures.c.done_at.is_(None))
        .values(done_at=at, done_by=actor)
    )
    return result.rowcount == 1


# --- maintenance windows --------------------------------------------------------------------------


def add_window(conn: Connection, *, scope: Mapping[str, Any], starts_at: float, ends_at: float, owner: str,
               reason: str, recurrence: Mapping[str, Any] | None, at: float, actor: str) -> int:
    result = conn.execute(
        maintenance_windows.insert().values(
            scope=json.dumps(dict(scope)), starts_at=starts_at, ends_at=ends_at, owner=owner, reason=reason,
            recurrence=json.dumps(dict(recurrence)) if recurrence else None, created_at=at, created_by=actor,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def windows(conn: Connection, *, not_handled_only: bool = False) -> list[WindowRecord]:
    query = sa.select(maintenance_windows).order_by(maintenance_windows.c.starts_at)
    if not_handled_only:
        query = query.where(maintenance_windows.c.end_handled_at.is_(None))
    out = []
    for row in conn.execute(query):
        data = dict(row._mapping)
        data["scope"] = json.loads(data["scope"])
        data["recurrence"] = json.loads(data["recurrence"]) if data["recurrence"] else None
        out.append(WindowRecord(**data))
    return out


def end_window(conn: Connection, window_id: int, at: float) -> bool:
    result = conn.execute(
        maintenance_windows.update()
        .where((maintenance_windows.c.id == window_id) & maintenance_windows.c.ended_at.is_(None)
               & (maintenance_windows.c.ends_at > at))
        .values(ended_at=at)
    )
    return result.rowcount == 1


def mark_window_end_handled(conn: Connection, window_id: int, at: float) -> bool:
    result = conn.execute(
        maintenance_windows.update()
        .where((maintenance_windows.c.id == window_id) & maintenance_windows.c.end_handled_at.is_(None))
        .values(end_handled_at=at)
    )
    return result.rowcount == 1


# --- audit ----------------------------------------------------------------------------------------


def audit(conn: Connection, at: float, actor: str, action: str, target: str, detail: Mapping[str, Any] | None = None) -> None:
    conn.execute(
        audit_log.insert().values(at=at, actor=actor, action=action, target=target, detail=json.dumps(dict(detail or {})))
    )


# --- faults reported by people --------------------------------------------------------------------


@dataclass(frozen=True)
class FaultReport:
    id: int
    asset: str | None
    site: str | None
    description: str
    type: FaultType
    severity: Severity
    reporter: str
    at: float
    incident_id: int | None


def add_fault_report(conn: Connection, *, asset: str | None, site: str | None, description: str, type: FaultType,
                     severity: Severity, reporter: str, at: float) -> int:
    result = conn.execute(fault_reports.insert().values(
        asset=asset, site=site, description=description, type=type.value, severity=int(severity),
        reporter=reporter, at=at,
    ))
    report_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    audit(conn, at, reporter, "fault.report", f"fault_report:{report_id}", {"asset": asset, "site": site})
    return report_id


def pending_fault_reports(conn: Connection) -> list[FaultReport]:
    rows = conn.execute(sa.select(fault_reports).where(fault_reports.c.incident_id.is_(None)).order_by(fault_reports.c.id))
    return [FaultReport(r.id, r.asset, r.site, r.description, FaultType(r.type), Severity(r.severity), r.reporter, r.at,
                        r.incident_id) for r in rows]


def fault_report_handled(conn: Connection, report_id: int, incident_id: int) -> None:
    conn.execute(fault_reports.update().where(fault_reports.c.id == report_id).values(incident_id=incident_id))
