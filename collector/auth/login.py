"""Logging in to the web pages: password, then (where needed) a TOTP code; sessions that expire.

Functions of a store connection and ``now``; the pages call them through the store. Every attempt
is in the audit log (who, when, the outcome — never the password or the code). After
:data:`MAX_FAILED` wrong passwords in a row a login is locked for :data:`LOCK_FOR`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from collector.auth import secrets as credentials
from collector.auth.roles import needs_second_factor
from collector.secrets import SecretBox
from collector.store import incidents as q
from collector.store import logins as s

MAX_FAILED = 5
LOCK_FOR = 15 * 60.0
IDLE = 8 * 3600.0  # a session unused this long ends
LIFETIME = 7 * 86400.0  # and every session ends after this
SECOND_FACTOR_WINDOW = 5 * 60.0  # time to type the code after the password
_DUMMY = credentials.hash_password("not a password of anyone here")  # equal work for unknown people
REFUSED = "wrong person or password"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    reason: str = ""
    session_id: str | None = None
    second_factor: bool = False  # the session waits for a TOTP code


def new_session(conn: Connection, person: str, *, second_factor_ok: bool, now: float) -> str:
    session_id = secrets.token_urlsafe(32)
    lifetime = LIFETIME if second_factor_ok else SECOND_FACTOR_WINDOW
    s.create_session(conn, session_id, person, secrets.token_urlsafe(24), second_factor_ok=second_factor_ok, at=now,
                     expires_at=now + lifetime)
    return session_id


def password_login(conn: Connection, person: str, roles: Iterable[str] | None, password: str, now: float,
                   *, second_factor_roles: Iterable[str], source: str = "") -> Attempt:
    """``roles`` None: no such person in the on-call file (refused like a wrong password)."""
    login = s.get_login(conn, person) if roles is not None else None
    where = {"from": source} if source else {}
    if login is None:
        credentials.verify_password(_DUMMY, password)
        q.audit(conn, now, person[:64] or "-", "login.failed", f"person:{person[:64]}", {**where, "why": "unknown"})
        return Attempt(False, REFUSED)
    if login.locked_until is not None and login.locked_until > now:
        q.audit(conn, now, person, "login.refused", f"person:{person}", {**where, "why": "locked"})
        return Attempt(False, f"too many wrong passwords: try again after {int((login.locked_until - now) // 60) + 1} min")
    if not credentials.verify_password(login.password_hash, password):
        failed = login.failed + 1
        locked = now + LOCK_FOR if failed >= MAX_FAILED else None
        s.update_login(conn, person, failed=0 if locked else failed, locked_until=locked)
        q.audit(conn, now, person, "login.failed", f"person:{person}", {**where, "why": "password",
                                                                          "locked": locked is not None})
        return Attempt(False, REFUSED)
    updates: dict[str, object] = {"failed": 0, "locked_until": None}
    if credentials.needs_rehash(login.password_hash):
        updates["password_hash"] = credentials.hash_password(password)
    s.update_login(conn, person, **updates)
    assert roles is not None
    if login.totp_secret is None and needs_second_factor(roles, second_factor_roles):
        q.audit(conn, now, person, "login.refused", f"person:{person}", {**where, "why": "no second factor"})
        return Attempt(False, f"your role needs a second factor: enrol one first (schoolops user totp {person})")
    second = login.totp_secret is not None
    session_id = new_session(conn, person, second_factor_ok=not second, now=now)
    q.audit(conn, now, person, "login.password" if second else "login", f"person:{person}", where)
    return Attempt(True, session_id=session_id, second_factor=second)


def second_factor(conn: Connection, box: SecretBox, session_id: str, code: str, now: float, *,
                  source: str = "") -> Attempt:
    session = s.get_session(conn, session_id)
    if session is None or session.expires_at <= now or session.second_factor_ok:
        return Attempt(False, "log in again")
    login = s.get_login(conn, session.person)
    if login is None or login.totp_secret is None:
        return Attempt(False, "log in again")
    step = credentials.totp_step(box.decrypt(login.totp_secret), code, now, login.totp_last_step)
    where = {"from": source} if source else {}
    if step is None:
        failed = login.failed + 1
        locked = now + LOCK_FOR if failed >= MAX_FAILED else None
        s.update_login(conn, session.person, failed=0 if locked else failed, locked_until=locked)
        if locked:
            s.end_session(conn, session_id)
        q.audit(conn, now, session.person, "login.failed", f"person:{session.person}", {**where, "why": "code"})
        return Attempt(False, "wrong or already used code")
    s.update_login(conn, session.person, totp_last_step=step, failed=0)
    s.end_session(conn, session_id)  # a new id once fully logged in
    fresh = new_session(conn, session.person, second_factor_ok=True, now=now)
    q.audit(conn, now, session.person, "login", f"person:{session.person}", {**where, "second_factor": True})
    return Attempt(True, session_id=fresh)


def current(conn: Connection, session_id: str, now: float) -> s.Session | None:
    """The live session with this id (touched), or None: unknown, expired or idle too long (then removed)."""
    session = s.get_session(conn, session_id)
    if session is None:
        return None
    if session.expires_at <= now or (session.second_factor_ok and now - session.last_seen > IDLE):
        s.end_session(conn, session_id)
        return None
    if now - session.last_seen > 60:  # write at most once a minute
        s.touch_session(conn, session_id, now)
    return session


def logout(conn: Connection, session_id: str, now: float) -> None:
    session = s.get_session(conn, session_id)
    if session is not None:
        s.end_session(conn, session_id)
        q.audit(conn, now, session.person, "logout", f"person:{session.person}")
