"""Logins and sessions (queries only). Passwords are stored as Argon2id hashes, TOTP secrets encrypted,
session ids as their SHA-256 (a stolen database yields no usable cookie)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store.tables import logins, sessions


@dataclass(frozen=True)
class Login:
    person: str
    password_hash: str
    totp_secret: bytes | None
    totp_last_step: int | None
    failed: int
    locked_until: float | None
    updated_at: float


@dataclass(frozen=True)
class Session:
    id_hash: str
    person: str
    csrf: str
    second_factor_ok: bool
    created_at: float
    last_seen: float
    expires_at: float


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def get_login(conn: Connection, person: str) -> Login | None:
    row = conn.execute(sa.select(logins).where(logins.c.person == person)).one_or_none()
    return Login(**row._mapping) if row else None


def list_logins(conn: Connection) -> list[Login]:
    return [Login(**r._mapping) for r in conn.execute(sa.select(logins).order_by(logins.c.person))]


def set_password(conn: Connection, person: str, password_hash: str, at: float) -> None:
    if conn.execute(logins.update().where(logins.c.person == person).values(
            password_hash=password_hash, failed=0, locked_until=None, updated_at=at)).rowcount == 0:
        conn.execute(logins.insert().values(person=person, password_hash=password_hash, failed=0, updated_at=at))


def update_login(conn: Connection, person: str, **values: object) -> bool:
    return conn.execute(logins.update().where(logins.c.person == person).values(**values)).rowcount == 1


def create_session(conn: Connection, session_id: str, person: str, csrf: str, *, second_factor_ok: bool, at: float,
                   expires_at: float) -> None:
    conn.execute(sessions.insert().values(id_hash=session_hash(session_id), person=person, csrf=csrf,
                                          second_factor_ok=second_factor_ok, created_at=at, last_seen=at,
                                          expires_at=expires_at))


def get_session(conn: Connection, session_id: str) -> Session | None:
    row = conn.execute(sa.select(sessions).where(sessions.c.id_hash == session_hash(session_id))).one_or_none()
    return Session(**row._mapping) if row else None


def touch_session(conn: Connection, session_id: str, at: float, **values: object) -> None:
    conn.execute(sessions.update().where(sessions.c.id_hash == session_hash(session_id)).values(last_seen=at, **values))


def end_session(conn: Connection, session_id: str) -> None:
    conn.execute(sessions.delete().where(sessions.c.id_hash == session_hash(session_id)))


def end_sessions_of(conn: Connection, person: str, *, keep: str | None = None) -> int:
    """End every session of ``person`` but the one with id ``keep`` (if given); how many ended."""
    query = sessions.delete().where(sessions.c.person == person)
    if keep is not None:
        query = query.where(sessions.c.id_hash != session_hash(keep))
    return int(conn.execute(query).rowcount)


def prune_sessions(conn: Connection, now: float) -> int:
    return int(conn.execute(sessions.delete().where(sessions.c.expires_at <= now)).rowcount)
