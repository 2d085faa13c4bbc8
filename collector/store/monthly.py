"""What the director's monthly report is made from, read in one transaction (queries only).

:func:`month_data` returns plain data; :mod:`collector.reports.monthly` turns it into figures. Down
time is rebuilt from the incident timeline, not from the ``faults`` table: a fault's row holds only
its latest firing (it is keyed by fingerprint and overwritten when the fault fires again), whereas
the timeline keeps every ``opened`` / ``fault_fired`` / ``consequence`` event (the fault began)
and every ``fault_cleared`` event (it ended), each with the fault's fingerprint. The row still
gives the latest firing's ``since`` (when the condition began, before the rule's ``for`` delay).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store import incidents as q
from collector.store.patrol import PatrolResult, PatrolRun
from collector.store.tables import (
    assets,
    audit_log,
    faults,
    incident_events,
    incidents,
    notifications,
    patrol_results,
    patrol_runs,
    preventive_measures,
)

# Rules whose fault means the asset (or the service it runs) cannot be used: no report at all, no
# answer to SNMP, a failed active check, a watched process not running, a watched port closed.
# Other faults (a disk filling up, high load, an expiring certificate) degrade an asset but leave it up.
DOWN_RULES = frozenset({"asset_silent", "device_unreachable", "probe_failed", "process_down", "port_closed"})
KEY_TIERS = ("core", "important")
KEY_KINDS = ("service",)
FAULT_STARTS = ("opened", "fault_fired", "consequence")
FAULT_ENDS = ("fault_cleared",)
DIRECTOR_KINDS = ("page", "reminder")  # the director paged by an escalation step or its reminders
FINISHED_RUNS = ("done", "signed", "reviewed")
SENT = "report.monthly.sent"  # the audit log's action for a monthly report sent to the directors


@dataclass(frozen=True)
class KeyService:
    name: str
    kind: str
    site: str | None
    role: str | None
    tier: str | None
    created_at: float


@dataclass(frozen=True)
class FaultEvent:
    """A down fault of a key service began (``starts``) or ended, as the incident timeline says."""

    fingerprint: str  # rule|asset|key
    asset: str
    rule: str
    at: float
    starts: bool
    since: float | None = None  # for the firing the fault's row still describes: when its condition began


@dataclass(frozen=True)
class DirectorPage:
    """A page or reminder about an incident written to the outbox for a director (or an escalation
    event that says it reached one)."""

    incident_id: int
    at: float
    severity: int | None
    person: str  # "" when only the timeline says a director was reached
    step: str
    delivered: bool | None  # sent (or merged into a digest); False while pending or given up; None: not known


@dataclass(frozen=True)
class MonthData:
    start: float
    end: float  # exclusive
    as_of: float  # when the data was read: nothing after this is known
    services: tuple[KeyService, ...]
    fault_events: tuple[FaultEvent, ...]  # of key services' down faults, up to ``end``, in time order
    windows: tuple[q.WindowRecord, ...]  # maintenance windows overlapping the month
    incidents: tuple[q.IncidentRecord, ...]  # opened in the month
    director_pages: tuple[DirectorPage, ...]
    incident_titles: dict[int, tuple[str, str]]  # id → (asset, title), for the incidents the director was paged about
    patrol_runs: tuple[PatrolRun, ...]  # started in the month
    patrol_results: tuple[PatrolResult, ...]  # of those runs
    measures: tuple[q.Measure, ...]  # created before the end and not done before the start


def month_data(conn: Connection, start: float, end: float, *, as_of: float, directors: Collection[str] = (),
               down_rules: Collection[str] = DOWN_RULES) -> MonthData:
    """Everything the monthly report of [start, end) needs; ``directors``: the ids of people with the
    director role (from the on-call file)."""
    services = _services(conn)
    windows = tuple(w for w in q.windows(conn) if w.starts_at < end
                    and (w.ends_at if w.ended_at is None else min(w.ends_at, w.ended_at)) > start)
    opened = conn.execute(sa.select(incidents).where((incidents.c.opened_at >= start) & (incidents.c.opened_at < end))
                          .order_by(incidents.c.opened_at, incidents.c.id))
    pages = _director_pages(conn, start, end, frozenset(directors))
    ids = sorted({page.incident_id for page in pages})
    titles = {r.id: (r.asset, r.title) for r in conn.execute(
        sa.select(incidents.c.id, incidents.c.asset, incidents.c.title).where(incidents.c.id.in_(ids)))}
    runs = [PatrolRun(**r._mapping) for r in conn.execute(
        sa.select(patrol_runs).where((patrol_runs.c.started_at >= start) & (patrol_runs.c.started_at < end))
        .order_by(patrol_runs.c.started_at, patrol_runs.c.id))]
    results = [PatrolResult(**r._mapping) for r in conn.execute(
        sa.select(patrol_results).where(patrol_results.c.run_id.in_([run.id for run in runs]))
        .order_by(patrol_results.c.run_id, patrol_results.c.id))]
    measures = [q.Measure(**r._mapping) for r in conn.execute(
        sa.select(preventive_measures).where(
            (preventive_measures.c.created_at < end)
            & (preventive_measures.c.done_at.is_(None) | (preventive_measures.c.done_at >= start)))
        .order_by(preventive_measures.c.due, preventive_measures.c.id))]
    return MonthData(
        start=start, end=end, as_of=as_of, services=services,
        fault_events=_fault_events(conn, end, {s.name for s in services}, frozenset(down_rules)),
        windows=windows, incidents=tuple(q.IncidentRecord.from_row(r) for r in opened),
        director_pages=pages, incident_titles=titles, patrol_runs=tuple(runs), patrol_results=tuple(results),
        measures=tuple(measures))


def _services(conn: Connection) -> tuple[KeyService, ...]:
    rows = conn.execute(sa.select(assets).where(assets.c.tier.in_(KEY_TIERS) | assets.c.kind.in_(KEY_KINDS))
                        .order_by(assets.c.name))
    return tuple(KeyService(r.name, r.kind, r.site, r.role, r.tier, r.created_at) for r in rows)


def _fault_events(conn: Connection, end: float, names: set[str], rules: frozenset[str]) -> tuple[FaultEvent, ...]:
    if not names or not rules:
        return ()
    # a prefilter in SQL (the data column is JSON text written by json.dumps); the exact test is below
    like = sa.or_(*(incident_events.c.data.like(f'%"fault": "{rule}|%') for rule in sorted(rules)))
    rows = conn.execute(
        sa.select(incident_events.c.at, incident_events.c.kind, incident_events.c.data)
        .where(incident_events.c.kind.in_(FAULT_STARTS + FAULT_ENDS) & (incident_events.c.at < end) & like)
        .order_by(incident_events.c.at, incident_events.c.id))
    latest = {r.fingerprint: (r.fired_at, r.since) for r in conn.execute(
        sa.select(faults.c.fingerprint, faults.c.fired_at, faults.c.since).where(
            faults.c.rule.in_(sorted(rules)) & faults.c.asset.in_(sorted(names))))}
    found = []
    for row in rows:
        fingerprint = json.loads(row.data).get("fault")
        if not isinstance(fingerprint, str) or fingerprint.count("|") < 2:
            continue
        rule, asset, _ = fingerprint.split("|", 2)
        if rule not in rules or asset not in names:
            continue
        starts = row.kind in FAULT_STARTS
        fired_at, since = latest.get(fingerprint, (None, None))
        found.append(FaultEvent(fingerprint, asset, rule, row.at, starts,
                                since if starts and fired_at == row.at else None))
    return tuple(found)


def _director_pages(conn: Connection, start: float, end: float, directors: frozenset[str]) -> tuple[DirectorPage, ...]:
    pages = []
    if directors:
        rows = conn.execute(sa.select(notifications).where(
            notifications.c.incident_id.is_not(None) & notifications.c.person.in_(sorted(directors))
            & notifications.c.kind.in_(DIRECTOR_KINDS)
            & (notifications.c.created_at >= start) & (notifications.c.created_at < end))
            .order_by(notifications.c.created_at, notifications.c.id))
        pages += [DirectorPage(r.incident_id, r.created_at, r.severity, r.person, r.step_key or "",
                               r.state in ("sent", "merged")) for r in rows]
    # the escalator also marks on the timeline whether a step reached a director (whoever held the role then)
    events = conn.execute(
        sa.select(incident_events.c.incident_id, incident_events.c.at, incident_events.c.data, incidents.c.severity)
        .select_from(incident_events.join(incidents, incidents.c.id == incident_events.c.incident_id))
        .where((incident_events.c.kind == "escalation") & (incident_events.c.at >= start) & (incident_events.c.at < end))
        .order_by(incident_events.c.at, incident_events.c.id))
    known = {(page.incident_id, page.step) for page in pages}
    for row in events:
        data = json.loads(row.data)
        if data.get("director") is True and data.get("kind") in DIRECTOR_KINDS \
                and (row.incident_id, data.get("step", "")) not in known:
            pages.append(DirectorPage(row.incident_id, row.at, row.severity, "", str(data.get("step", "")), None))
    return tuple(sorted(pages, key=lambda page: (page.at, page.incident_id)))


# --- what was sent --------------------------------------------------------------------------------


def last_sent_month(conn: Connection) -> str | None:
    """The latest month (YYYY-MM) whose report was sent (or found to have nothing to report)."""
    target = conn.execute(sa.select(sa.func.max(audit_log.c.target)).where(audit_log.c.action == SENT)).scalar()
    return str(target).rpartition(":")[2] if target else None


def mark_sent(conn: Connection, month: str, at: float, actor: str, detail: dict[str, object]) -> None:
    """Record that the report of ``month`` went out; in the transaction that wrote its messages."""
    q.audit(conn, at, actor, SENT, f"report.monthly:{month}", detail)


def first_asset_at(conn: Connection) -> float | None:
    """When the first asset was recorded: a month that ended before it has nothing to report."""
    found = conn.execute(sa.select(sa.func.min(assets.c.created_at))).scalar()
    return float(found) if found is not None else None
