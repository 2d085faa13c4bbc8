"""Patrol runs and their results (queries only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store.tables import patrol_results, patrol_runs


@dataclass(frozen=True)
class PatrolRun:
    id: int
    checklist: str
    started_by: str
    started_at: float
    finished_at: float | None
    state: str  # running | done | signed | reviewed
    signed_by: str | None
    signed_at: float | None
    reviewed_by: str | None
    reviewed_at: float | None
    review_note: str | None
    total: int | None = None  # the number of checks, once the run started

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PatrolResult:
    id: int
    run_id: int
    section: str
    item: str
    asset: str
    key: str
    status: str
    value: float | None
    evidence: str
    reason: str
    handling: str
    handler: str | None
    note: str | None
    fault: str | None
    at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def identity(self) -> tuple[str, str, str]:
        """What the same check is across runs: item, asset, key."""
        return self.item, self.asset, self.key


def create_run(conn: Connection, checklist: str, started_by: str, at: float, *, state: str = "queued") -> int:
    result = conn.execute(patrol_runs.insert().values(checklist=checklist, started_by=started_by, started_at=at,
                                                      state=state))
    return int(result.inserted_primary_key[0])


def get_run(conn: Connection, run_id: int) -> PatrolRun | None:
    row = conn.execute(sa.select(patrol_runs).where(patrol_runs.c.id == run_id)).one_or_none()
    return PatrolRun(**row._mapping) if row else None


def list_runs(conn: Connection, checklist: str | None = None, limit: int = 100) -> list[PatrolRun]:
    query = sa.select(patrol_runs).order_by(patrol_runs.c.id.desc()).limit(limit)
    if checklist:
        query = query.where(patrol_runs.c.checklist == checklist)
    return [PatrolRun(**r._mapping) for r in conn.execute(query)]


def previous_run(conn: Connection, run: PatrolRun) -> PatrolRun | None:
    """The last finished run of the same checklist before ``run``."""
    row = conn.execute(sa.select(patrol_runs).where(
        (patrol_runs.c.checklist == run.checklist) & (patrol_runs.c.id < run.id)
        & (patrol_runs.c.state != "running")).order_by(patrol_runs.c.id.desc()).limit(1)).one_or_none()
    return PatrolRun(**row._mapping) if row else None


def update_run(conn: Connection, run_id: int, *, expect_state: str | None = None, **values: Any) -> bool:
    query = patrol_runs.update().where(patrol_runs.c.id == run_id)
    if expect_state is not None:
        query = query.where(patrol_runs.c.state == expect_state)
    return conn.execute(query.values(**values)).rowcount == 1


def add_result(conn: Connection, **values: Any) -> int:
    values.setdefault("handling", "")
    values.setdefault("reason", "")
    return int(conn.execute(patrol_results.insert().values(**values)).inserted_primary_key[0])


def results(conn: Connection, run_id: int) -> list[PatrolResult]:
    rows = conn.execute(sa.select(patrol_results).where(patrol_results.c.run_id == run_id).order_by(patrol_results.c.id))
    return [PatrolResult(**r._mapping) for r in rows]


def update_result(conn: Connection, result_id: int, **values: Any) -> None:
    conn.execute(patrol_results.update().where(patrol_results.c.id == result_id).values(**values))


def abnormal_history(conn: Connection, checklist: str, identity: tuple[str, str, str], before_run: int,
                     limit: int = 400) -> list[tuple[float, str]]:
    """(run start, status) of this check in earlier runs of the checklist, newest first."""
    item, asset, key = identity
    rows = conn.execute(
        sa.select(patrol_runs.c.started_at, patrol_results.c.status)
        .select_from(patrol_results.join(patrol_runs, patrol_runs.c.id == patrol_results.c.run_id))
        .where((patrol_runs.c.checklist == checklist) & (patrol_runs.c.id < before_run)
               & (patrol_results.c.item == item) & (patrol_results.c.asset == asset) & (patrol_results.c.key == key))
        .order_by(patrol_runs.c.id.desc()).limit(limit))
    return [(r.started_at, r.status) for r in rows]
