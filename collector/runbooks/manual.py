"""Runs started by people (CLI and API): check the request, show it as a dry run, or queue it.

A request names a runbook and either an asset or an incident (whose asset and first active fault
it then uses), with extra variables. Everything is rendered before anything is queued, so a
placeholder without a value or an unknown variable is refused at once with its name; the
collector's runbook service executes the queued run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.inventory import InventoryEntry
from collector.runbooks.model import Runbook, RunbookParams
from collector.runbooks.render import PlannedStep, RenderError, Scope, plan
from collector.runbooks.scope import build_scope
from collector.store import incidents as q
from collector.store import runbooks as r
from collector.store.tables import assets


class RequestRefused(CollectorError):
    """A manual run cannot start as asked; the message says why."""


@dataclass(frozen=True)
class Target:
    asset: str
    incident: q.IncidentRecord | None
    fault: q.FaultRecord | None
    known: dict[str, str | None]


def resolve_target(conn: Connection, *, asset: str | None, incident_id: int | None) -> Target:
    incident = fault = None
    if incident_id is not None:
        incident = q.get_incident(conn, incident_id)
        if incident is None:
            raise RequestRefused(f"no incident {incident_id}")
        faults = q.incident_faults(conn, incident_id)
        main = [f for f in faults if (asset is None or f.asset == asset)]
        fault = next((f for f in main if f.active), main[0] if main else None)
        asset = asset or incident.asset
    if not asset:
        raise RequestRefused("name the asset (--asset) or an incident (--incident) to run against")
    row = conn.execute(sa.select(assets).where(assets.c.name == asset)).one_or_none()
    if row is None:
        raise RequestRefused(f"no asset named {asset!r} (see schoolops assets list)")
    known = {"kind": row.kind, "site": row.site, "role": row.role, "tier": row.tier}
    return Target(asset, incident, fault, known)


def scope_for(target: Target, entry: InventoryEntry | None, variables: Mapping[str, str]) -> Scope:
    return build_scope(target.asset, known=target.known, entry=entry, incident=target.incident, fault=target.fault,
                       variables=variables)


def dry_run(runbooks: dict[str, Runbook], name: str, target: Target, entry: InventoryEntry | None,
            variables: Mapping[str, str]) -> list[tuple[int, PlannedStep]]:
    """Every step that would run, with depth (called runbooks indented under their step); touches nothing."""
    runbook = _runbook(runbooks, name)
    out: list[tuple[int, PlannedStep]] = []

    def walk(rb: Runbook, given: Mapping[str, str], depth: int) -> None:
        try:
            steps = plan(rb, scope_for(target, entry, given))
        except RenderError as exc:
            raise RequestRefused(str(exc)) from None
        for step in steps:
            out.append((depth, step))
            if isinstance(step.params, RunbookParams) and depth < 8:
                walk(runbooks[step.params.name], {}, depth + 1)

    walk(runbook, variables, 0)
    return out


def queue(conn: Connection, runbooks: dict[str, Runbook], name: str, target: Target, entry: InventoryEntry | None,
          variables: Mapping[str, str], *, actor: str, now: float) -> int:
    """Check the request renders, then queue it; return the run's id."""
    dry_run(runbooks, name, target, entry, variables)
    run_id = r.create_run(conn, runbook=name, asset=target.asset, incident_id=target.incident.id if target.incident else None,
                          fault=target.fault.fingerprint if target.fault else None, started_by=actor, automatic=False,
                          variables=dict(variables), at=now)
    q.audit(conn, now, actor, "runbook.request", f"run:{run_id}", {"runbook": name, "asset": target.asset,
                                                                    "variables": dict(variables)})
    return run_id


def _runbook(runbooks: dict[str, Runbook], name: str) -> Runbook:
    if name not in runbooks:
        raise RequestRefused(f"no runbook named {name!r}; known: {', '.join(sorted(runbooks)) or 'none'}")
    return runbooks[name]


def parse_variables(pairs: list[str] | None) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RequestRefused(f"expected NAME=VALUE, got {pair!r}")
        variables[key.strip()] = value
    return variables
