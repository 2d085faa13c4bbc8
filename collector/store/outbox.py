"""The notification outbox, escalation steps taken, one-click links, broken channels, security reports.

A notification is a row before it is a message: recorded, then sent, then updated (sent, retried,
merged into a digest, given up). An escalation step is recorded by inserting its key once; the
insert that succeeds is the one that sends, so restarts and second collectors never send twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store.dialect import insert_ignore as _insert_ignore
from collector.store.tables import ack_links, channel_state, escalation_steps, notifications, security_reports


@dataclass(frozen=True)
class Outgoing:
    id: int
    incident_id: int | None
    step_key: str | None
    person: str
    channel: str
    address: str | None
    kind: str
    severity: int | None
    language: str
    subject: str
    text: str
    ack_url: str | None
    state: str
    attempts: int
    created_at: float
    due_at: float
    sent_at: float | None
    last_error: str | None
    merged_into: int | None
    contact_index: int


def enqueue(conn: Connection, **values: Any) -> int:
    values.setdefault("state", "pending")
    values.setdefault("attempts", 0)
    values.setdefault("contact_index", 0)
    values.setdefault("due_at", values["created_at"])
    return int(conn.execute(notifications.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]


def get(conn: Connection, notification_id: int) -> Outgoing:
    return Outgoing(**conn.execute(sa.select(notifications).where(notifications.c.id == notification_id)).one()._mapping)


def pending(conn: Connection, now: float, limit: int = 500) -> list[Outgoing]:
    rows = conn.execute(sa.select(notifications).where((notifications.c.state == "pending") & (notifications.c.due_at <= now))
                        .order_by(notifications.c.due_at, notifications.c.id).limit(limit))
    return [Outgoing(**r._mapping) for r in rows]


def all_for_incident(conn: Connection, incident_id: int) -> list[Outgoing]:
    rows = conn.execute(sa.select(notifications).where(notifications.c.incident_id == incident_id).order_by(notifications.c.id))
    return [Outgoing(**r._mapping) for r in rows]


def update(conn: Connection, notification_id: int, **values: Any) -> None:
    conn.execute(notifications.update().where(notifications.c.id == notification_id).values(**values))


def take_step(conn: Connection, incident_id: int, key: str, at: float) -> bool:
    """Record an escalation step; True only for the one caller that records it first."""
    return _insert_ignore(conn, escalation_steps, {"incident_id": incident_id, "step_key": key, "done_at": at})


def steps_taken(conn: Connection, incident_id: int) -> frozenset[str]:
    rows = conn.execute(sa.select(escalation_steps.c.step_key).where(escalation_steps.c.incident_id == incident_id))
    return frozenset(r.step_key for r in rows)


def add_link(conn: Connection, nonce: str, incident_id: int, person: str, expires_at: float) -> None:
    conn.execute(ack_links.insert().values(nonce=nonce, incident_id=incident_id, person=person, expires_at=expires_at))


def link_state(conn: Connection, nonce: str) -> tuple[int, str, float | None] | None:
    row = conn.execute(sa.select(ack_links).where(ack_links.c.nonce == nonce)).one_or_none()
    return (row.incident_id, row.person, row.used_at) if row else None


def use_link(conn: Connection, nonce: str, at: float) -> bool:
    """Compare-and-set: a link works once."""
    return conn.execute(ack_links.update().where((ack_links.c.nonce == nonce) & ack_links.c.used_at.is_(None))
                        .values(used_at=at)).rowcount == 1


def broken_channels(conn: Connection) -> dict[str, tuple[float, str]]:
    rows = conn.execute(sa.select(channel_state).where(channel_state.c.broken_since.is_not(None)))
    return {r.channel: (r.broken_since, r.reason or "") for r in rows}


def register_channels(conn: Connection, channels: Iterable[str]) -> None:
    """A row for each configured channel (not broken), so that its metrics exist before its first message."""
    for channel in channels:
        _insert_ignore(conn, channel_state, {"channel": channel, "broken_since": None, "reason": None})


def set_channel_broken(conn: Connection, channel: str, at: float | None, reason: str | None) -> bool:
    """Mark (or clear, with at=None) a channel broken; True when this changed its state."""
    row = conn.execute(sa.select(channel_state.c.broken_since).where(channel_state.c.channel == channel)).one_or_none()
    if row is None:
        conn.execute(channel_state.insert().values(channel=channel, broken_since=at, reason=reason))
        return at is not None
    if (row.broken_since is None) == (at is None):
        return False
    conn.execute(channel_state.update().where(channel_state.c.channel == channel).values(broken_since=at, reason=reason))
    return True


def security_report(conn: Connection, incident_id: int) -> tuple[float, float | None] | None:
    row = conn.execute(sa.select(security_reports).where(security_reports.c.incident_id == incident_id)).one_or_none()
    return (row.deadline, row.reported_at) if row else None


def start_security_clock(conn: Connection, incident_id: int, deadline: float) -> None:
    _insert_ignore(conn, security_reports, {"incident_id": incident_id, "deadline": deadline})


def mark_security_reported(conn: Connection, incident_id: int, at: float, actor: str, reference: str) -> bool:
    return conn.execute(security_reports.update()
                        .where((security_reports.c.incident_id == incident_id) & security_reports.c.reported_at.is_(None))
                        .values(reported_at=at, reported_by=actor, reference=reference)).rowcount == 1
