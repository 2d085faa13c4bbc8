"""Upgrade requests and their steps.

A request's ``state`` moves: (run) ``waiting_approval`` → ``approved`` (or ``denied``/``expired``) →
``running`` → a final state; (check, rollback by hand) ``queued`` → ``running`` → a final state.
Decisions are compare-and-set on the state, so two people deciding at once cannot both win.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store.tables import upgrade_steps, upgrades

FINAL = ("checked", "check_failed", "succeeded", "stopped", "rolled_back", "rollback_failed", "incomplete", "denied",
         "expired", "interrupted")
"""checked / check_failed: pre-checks only; stopped: a pre-check or the backup failed, nothing changed;
rolled_back: a batch failed and its rollback left the assets healthy; rollback_failed: it did not;
incomplete: the window ended before every batch started."""
STARTABLE = ("queued", "approved")


@dataclass(frozen=True)
class UpgradeRecord:
    id: int
    plan: str
    source: str
    plan_text: str
    digest: str
    mode: str
    of_upgrade: int | None
    requested_by: str
    requested_at: float
    state: str
    approval_role: str | None
    expires_at: float | None
    decided_by: str | None
    decided_at: float | None
    decision_note: str | None
    not_before: float | None
    window_id: int | None
    started_at: float | None
    finished_at: float | None
    result: str | None
    outcome: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> UpgradeRecord:
        data = dict(row._mapping)
        data["outcome"] = json.loads(data["outcome"])
        return cls(**data)

    def as_dict(self, *, with_text: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_text:
            data.pop("plan_text")
        return data


@dataclass(frozen=True)
class UpgradeStep:
    id: int
    upgrade_id: int
    phase: str
    batch: int | None
    asset: str
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


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create(conn: Connection, *, plan: str, source: str, plan_text: str, mode: str, requested_by: str, at: float,
           state: str, approval_role: str | None = None, expires_at: float | None = None,
           not_before: float | None = None, of_upgrade: int | None = None) -> int:
    result = conn.execute(upgrades.insert().values(
        plan=plan, source=source, plan_text=plan_text, digest=digest(plan_text), mode=mode, of_upgrade=of_upgrade,
        requested_by=requested_by, requested_at=at, state=state, approval_role=approval_role, expires_at=expires_at,
        not_before=not_before, outcome="{}"))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def get(conn: Connection, upgrade_id: int) -> UpgradeRecord | None:
    row = conn.execute(sa.select(upgrades).where(upgrades.c.id == upgrade_id)).first()
    return UpgradeRecord.from_row(row) if row else None


def list_upgrades(conn: Connection, *, states: tuple[str, ...] | None = None, limit: int = 100) -> list[UpgradeRecord]:
    query = sa.select(upgrades).order_by(upgrades.c.id.desc()).limit(limit)
    if states:
        query = query.where(upgrades.c.state.in_(states))
    return [UpgradeRecord.from_row(row) for row in conn.execute(query)]


def update(conn: Connection, upgrade_id: int, **values: Any) -> None:
    if "outcome" in values:
        values["outcome"] = json.dumps(values["outcome"], ensure_ascii=False)
    conn.execute(upgrades.update().where(upgrades.c.id == upgrade_id).values(**values))


def move(conn: Connection, upgrade_id: int, from_state: str, to_state: str, **values: Any) -> bool:
    """Compare-and-set: change the state only if it still is ``from_state``."""
    result = conn.execute(upgrades.update().where((upgrades.c.id == upgrade_id) & (upgrades.c.state == from_state))
                          .values(state=to_state, **values))
    return result.rowcount == 1


def add_step(conn: Connection, *, upgrade_id: int, phase: str, batch: int | None, asset: str, name: str, action: str,
             command: str, status: str, exit_status: int | None, output: str, detail: str, started_at: float,
             duration: float) -> None:
    conn.execute(upgrade_steps.insert().values(
        upgrade_id=upgrade_id, phase=phase, batch=batch, asset=asset, name=name[:160], action=action, command=command,
        status=status, exit_status=exit_status, output=output, detail=detail, started_at=started_at, duration=duration))


def steps(conn: Connection, upgrade_id: int) -> list[UpgradeStep]:
    query = sa.select(upgrade_steps).where(upgrade_steps.c.upgrade_id == upgrade_id).order_by(upgrade_steps.c.id)
    return [UpgradeStep(**dict(row._mapping)) for row in conn.execute(query)]
