"""What people do to incidents: acknowledge, note, resolve, submit an RCA, review, close, reopen.

Each action is one transaction: read the incident, ask the pure lifecycle whether the action is
allowed, compare-and-set the new state, append to the timeline and the audit log. The API and the
CLI call the same functions, so who did what is recorded the same way whichever they used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.incidents.lifecycle import Action, IncidentFacts, IncidentState, TransitionRefused, next_state
from collector.store import incidents as q
from collector.store.tables import escalation_steps, faults, preventive_measures


class ActionError(CollectorError):
    status = 400


class IncidentNotFound(ActionError):
    status = 404


class ActionRefused(ActionError):
    status = 409


class InvalidInput(ActionError):
    status = 422


@dataclass(frozen=True)
class MeasureInput:
    description: str
    owner: str
    due: str  # YYYY-MM-DD

    def validate(self) -> None:
        if not self.description.strip() or len(self.description) > 2000:
            raise InvalidInput("a preventive measure needs a description (at most 2000 characters)")
        if not self.owner.strip() or len(self.owner) > 64:
            raise InvalidInput("a preventive measure needs an owner (at most 64 characters)")
        try:
            dt.date.fromisoformat(self.due)
        except ValueError:
            raise InvalidInput(f"due must be a date as YYYY-MM-DD, got {self.due!r}") from None


def facts(conn: Connection, incident: q.IncidentRecord) -> IncidentFacts:
    active = conn.execute(
        sa.select(sa.func.count()).where((faults.c.incident_id == incident.id) & faults.c.active.is_(True))
    ).scalar_one()
    measure_count = conn.execute(
        sa.select(sa.func.count()).where(preventive_measures.c.incident_id == incident.id)
    ).scalar_one()
    return IncidentFacts(
        state=incident.state, severity=incident.severity, has_rca=bool(incident.rca),
        measures=int(measure_count), faults_active=int(active),
    )


def _load(conn: Connection, incident_id: int) -> q.IncidentRecord:
    incident = q.get_incident(conn, incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    return incident


_STAMPS = {
    IncidentState.ACKNOWLEDGED: ("acknowledged_at", "acknowledged_by"),
    IncidentState.RESOLVED: ("resolved_at", "resolved_by"),
    IncidentState.REVIEWED: ("reviewed_at", "reviewed_by"),
    IncidentState.CLOSED: ("closed_at", "closed_by"),
}
_VERBS = {
    Action.ACKNOWLEDGE: "acknowledged", Action.RESOLVE: "resolved", Action.REOPEN: "reopened",
    Action.REVIEW: "reviewed", Action.CLOSE: "closed",
}


def transition(
    conn: Connection, incident_id: int, action: Action, *, actor: str, at: float, note: str | None = None
) -> q.IncidentRecord:
    """Apply ``action``; if the collector changed the incident meanwhile (a new event, a severity
    change), decide again on the fresh state: a person's action is not lost to a background write."""
    for _ in range(_ATTEMPTS - 1):
        try:
            return _transition(conn, incident_id, action, actor=actor, at=at, note=note)
        except _Changed:
            continue
    try:
        return _transition(conn, incident_id, action, actor=actor, at=at, note=note)
    except _Changed:
        raise ActionRefused(f"incident {incident_id} changed while you were acting on it; look again and retry") from None


_ATTEMPTS = 3


class _Changed(Exception):
    """The incident's version moved between reading and writing it."""


def _transition(
    conn: Connection, incident_id: int, action: Action, *, actor: str, at: float, note: str | None = None
) -> q.IncidentRecord:
    incident = _load(conn, incident_id)
    try:
        state = next_state(facts(conn, incident), action)
    except TransitionRefused as exc:
        raise ActionRefused(f"incident {incident_id}: {exc.reason}") from None
    values: dict[str, object] = {"state": state.value}
    if state in _STAMPS:
        at_column, by_column = _STAMPS[state]
        values.update({at_column: at, by_column: actor})
    if action is Action.ACKNOWLEDGE and incident.owner is None:
        values["owner"] = actor
    if action is Action.REOPEN:  # a new round: escalation starts over
        values.update(resolved_at=None, resolved_by=None, all_cleared_at=None, notify_since=None)
        conn.execute(escalation_steps.delete().where(escalation_steps.c.incident_id == incident_id))
    if not q.update_incident(conn, incident_id, incident.version, **values):
        raise _Changed
    text = f"{_VERBS[action]} by {actor}" + (f": {note}" if note else "")
    q.add_event(conn, incident_id, at, action.value, actor, text,
                {"from": incident.state.value, "to": state.value, "note": note or ""})
    q.audit(conn, at, actor, f"incident.{action.value}", f"incident:{incident_id}", {"note": note or ""})
    return _load(conn, incident_id)


def add_note(conn: Connection, incident_id: int, *, actor: str, at: float, text: str) -> q.IncidentRecord:
    if not text.strip() or len(text) > 10_000:
        raise InvalidInput("a note needs text (at most 10000 characters)")
    incident = _load(conn, incident_id)
    if incident.state is IncidentState.CLOSED:
        raise ActionRefused(f"incident {incident_id} is closed; notes are kept as they were")
    q.add_event(conn, incident_id, at, "note", actor, text)
    q.audit(conn, at, actor, "incident.note", f"incident:{incident_id}")
    return incident


def submit_rca(
    conn: Connection, incident_id: int, *, actor: str, at: float, rca: str | None, measures: list[MeasureInput]
) -> q.IncidentRecord:
    """The regulation's 'analyse the cause, set preventive measures': record both before review and close."""
    if rca is not None and (not rca.strip() or len(rca) > 20_000):
        raise InvalidInput("the root-cause analysis needs text (at most 20000 characters)")
    if rca is None and not measures:
        raise InvalidInput("give a root-cause analysis, preventive measures, or both")
    for measure in measures:
        measure.validate()
    incident = _load(conn, incident_id)
    if incident.state is IncidentState.CLOSED:
        raise ActionRefused(f"incident {incident_id} is closed; its analysis can no longer change")
    if rca is not None:
        if not q.update_incident(conn, incident_id, incident.version, rca=rca):
            raise ActionRefused(f"incident {incident_id} changed while you were acting on it; look again and retry")
        q.add_event(conn, incident_id, at, "rca", actor, f"root-cause analysis by {actor}: {rca}")
    for measure in measures:
        measure_id = q.add_measure(conn, incident_id, measure.description, measure.owner, measure.due, at, actor)
        q.add_event(conn, incident_id, at, "measure", actor,
                    f"preventive measure {measure_id}: {measure.description} (owner {measure.owner}, due {measure.due})",
                    {"measure": measure_id})
    q.audit(conn, at, actor, "incident.rca", f"incident:{incident_id}", {"measures": len(measures), "rca": rca is not None})
    return _load(conn, incident_id)


def complete_measure(conn: Connection, measure_id: int, *, actor: str, at: float) -> q.Measure:
    found = [m for m in q.measures(conn) if m.id == measure_id]
    if not found:
        raise IncidentNotFound(f"no preventive measure {measure_id}")
    if not q.complete_measure(conn, measure_id, at, actor):
        raise ActionRefused(f"preventive measure {measure_id} is done already")
    q.add_event(conn, found[0].incident_id, at, "measure_done", actor, f"preventive measure {measure_id} done ({actor})")
    q.audit(conn, at, actor, "measure.done", f"measure:{measure_id}")
    return [m for m in q.measures(conn) if m.id == measure_id][0]
