"""Runbook runs, their step records, per-asset locks and approval requests (queries only)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store.tables import (
    runbook_approvals,
    runbook_locks,
    runbook_runs,
    runbook_steps,
)

FINAL = ("succeeded", "failed", "aborted", "escalated", "timed_out", "denied", "expired", "interrupted", "refused")
PENDING = ("queued", "running", "waiting_approval")


@dataclass(frozen=True)
class RunRecord:
    id: int
    runbook: str
    asset: str
    incident_id: int | None
    fault: str | None
    parent_run: int | None
    started_by: str
    automatic: bool
    state: str
    variables: dict[str, str]
    requested_at: float
    started_at: float | None
    finished_at: float | None
    next_step: int
    result: str | None

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        data = dict(row._mapping)
        data["variables"] = json.loads(data["variables"])
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepRecord:
    id: int
    run_id: int
    position: int
    name: str
    action: str
    command: str
    status: str
    exit_status: int | None
    output: str
    detail: str
    started_at: float
    duration: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    run_id: int
    step: str
    role: str
    reason: str
    requested_by: str
    requested_at: float
    expires_at: float
    decision: str | None
    decided_by: str | None
    decided_at: float | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def create_run(conn: Connection, *, runbook: str, asset: str, incident_id: int | None, fault: str | None,
               started_by: str, automatic: bool, variables: dict[str, str], at: float,
               parent_run: int | None = None, state: str = "queued") -> int:
    result = conn.execute(runbook_runs.insert().values(
        runbook=runbook, asset=asset, incident_id=incident_id, fault=fault, parent_run=parent_run,
        started_by=started_by, automatic=automatic, state=state, variables=json.dumps(variables),
        requested_at=at, next_step=0))
    return int(result.inserted_primary_key[0])


def get_run(conn: Connection, run_id: int) -> RunRecord | None:
    row = conn.execute(sa.select(runbook_runs).where(runbook_runs.c.id == run_id)).one_or_none()
    return RunRecord.from_row(row) if row else None


def list_runs(conn: Connection, *, incident_id: int | None = None, asset: str | None = None,
              states: tuple[str, ...] | None = None, runbook: str | None = None, limit: int = 200) -> list[RunRecord]:
    query = sa.select(runbook_runs).order_by(runbook_runs.c.id.desc()).limit(limit)
    if incident_id is not None:
        query = query.where(runbook_runs.c.incident_id == incident_id)
    if asset is not None:
        query = query.where(runbook_runs.c.asset == asset)
    if states is not None:
        query = query.where(runbook_runs.c.state.in_(states))
    if runbook is not None:
        query = query.where(runbook_runs.c.runbook == runbook)
    return [RunRecord.from_row(r) for r in conn.execute(query)]


def update_run(conn: Connection, run_id: int, **values: Any) -> None:
    conn.execute(runbook_runs.update().where(runbook_runs.c.id == run_id).values(**values))


def automatic_starts(conn: Connection, asset: str, runbook: str, since: float) -> list[float]:
    return list(conn.execute(sa.select(runbook_runs.c.requested_at).where(
        (runbook_runs.c.asset == asset) & (runbook_runs.c.runbook == runbook) & runbook_runs.c.automatic
        & runbook_runs.c.parent_run.is_(None) & (runbook_runs.c.requested_at > since)
        & (runbook_runs.c.state != "refused"))).scalars())


def add_step(conn: Connection, *, run_id: int, position: int, name: str, action: str, command: str, status: str,
             exit_status: int | None, output: str, detail: str, started_at: float, duration: float) -> int:
    result = conn.execute(runbook_steps.insert().values(
        run_id=run_id, position=position, name=name, action=action, command=command, status=status,
        exit_status=exit_status, output=output, detail=detail, started_at=started_at, duration=duration))
    return int(result.inserted_primary_key[0])


def settle_step(conn: Connection, run_id: int, name: str, status: str, detail: str) -> None:
    """An approve step's record once it is decided (it was written as "waiting")."""
    conn.execute(runbook_steps.update().where((runbook_steps.c.run_id == run_id) & (runbook_steps.c.name == name)
                                              & (runbook_steps.c.status == "waiting")).values(status=status, detail=detail))


def steps(conn: Connection, run_id: int) -> list[StepRecord]:
    rows = conn.execute(sa.select(runbook_steps).where(runbook_steps.c.run_id == run_id).order_by(runbook_steps.c.id))
    return [StepRecord(**dict(r._mapping)) for r in rows]


# --- locks ------------------------------------------------------------------------------------------
def acquire_lock(conn: Connection, asset: str, run_id: int, at: float) -> int:
    """Take the asset's lock for ``run_id``; return the run that holds it (``run_id`` when taken)."""
    holder = conn.execute(sa.select(runbook_locks.c.run_id).where(runbook_locks.c.asset == asset)).scalar_one_or_none()
    if holder is not None:
        return int(holder)
    conn.execute(runbook_locks.insert().values(asset=asset, run_id=run_id, acquired_at=at))
    return run_id


def release_lock(conn: Connection, asset: str, run_id: int) -> None:
    conn.execute(runbook_locks.delete().where((runbook_locks.c.asset == asset) & (runbook_locks.c.run_id == run_id)))


def locks(conn: Connection) -> dict[str, int]:
    return {r.asset: r.run_id for r in conn.execute(sa.select(runbook_locks))}


# --- approvals --------------------------------------------------------------------------------------
def request_approval(conn: Connection, *, run_id: int, step: str, role: str, reason: str, requested_by: str,
                     at: float, expires_at: float) -> int:
    result = conn.execute(runbook_approvals.insert().values(
        run_id=run_id, step=step, role=role, reason=reason, requested_by=requested_by, requested_at=at,
        expires_at=expires_at))
    return int(result.inserted_primary_key[0])


def approvals(conn: Connection, *, run_id: int | None = None, pending_only: bool = False) -> list[ApprovalRecord]:
    query = sa.select(runbook_approvals).order_by(runbook_approvals.c.id)
    if run_id is not None:
        query = query.where(runbook_approvals.c.run_id == run_id)
    if pending_only:
        query = query.where(runbook_approvals.c.decision.is_(None))
    return [ApprovalRecord(**dict(r._mapping)) for r in conn.execute(query)]


def decide_approval(conn: Connection, approval_id: int, decision: str, by: str, at: float, note: str | None) -> bool:
    """Record a decision once (compare-and-set on a pending request)."""
    return conn.execute(runbook_approvals.update().where(
        (runbook_approvals.c.id == approval_id) & runbook_approvals.c.decision.is_(None)).values(
        decision=decision, decided_by=by, decided_at=at, note=note)).rowcount == 1
