"""The audit log, read back (queries only; :func:`collector.store.incidents.audit` writes it)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store.tables import audit_log


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target: str
    detail: str  # JSON


def entries(conn: Connection, *, since: float, until: float | None = None, actor: str | None = None,
            action: str | None = None, limit: int = 1000) -> list[AuditEntry]:
    """Newest first. ``action`` matches a prefix ("login" finds login, login.failed, …)."""
    query = sa.select(audit_log).where(audit_log.c.at >= since).order_by(audit_log.c.id.desc()).limit(limit)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(audit_log.c.action.like(f"{escaped}%", escape="\\"))
    return [AuditEntry(**row._mapping) for row in conn.execute(query)]
