"""Changing how people log in: passwords, TOTP second factors, locks. The CLI (``schoolops user``) and the
admin's web page both call these, so a change is the same change, with the same audit row, whichever
way it was made.

Functions of a store connection and ``now``. Every change ends the person's sessions (``keep`` one
of them: the admin who changes their own login stays logged in on the page they used) and writes an
audit row naming who made it; the password and the TOTP secret never reach the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from collector.auth import secrets as credentials
from collector.auth.roles import SECOND_FACTOR_ROLES, needs_second_factor
from collector.secrets import SecretBox
from collector.store import incidents as q
from collector.store import logins


@dataclass(frozen=True)
class LoginState:
    """How one person of the on-call file logs in, as an admin needs to see it."""

    id: str
    name: str
    roles: tuple[str, ...]
    password: bool  # a password is set
    second_factor: bool  # a TOTP secret is enrolled
    second_factor_needed: bool  # the person's role asks for one
    locked_until: float | None  # a lock still in force, else None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


def states(conn: Connection, people: Iterable[Any], now: float,
           second_factor_roles: Iterable[str] = SECOND_FACTOR_ROLES) -> list[LoginState]:
    """Each person of ``people`` (the on-call file's, in its order) with their login's state."""
    known = {login.person: login for login in logins.list_logins(conn)}
    required = tuple(second_factor_roles)
    found = []
    for person in people:
        login = known.get(person.id)
        roles = tuple(str(role) for role in person.roles)
        locked = login.locked_until if login and login.locked_until and login.locked_until > now else None
        found.append(LoginState(person.id, person.name, roles, login is not None,
                                bool(login and login.totp_secret), needs_second_factor(roles, required), locked))
    return found


def hash_new_password(password: str, person: str) -> str:
    """The Argon2id hash of a password that follows the rules; WeakPassword (saying why) otherwise.
    Slow on purpose: call it before opening a transaction."""
    credentials.check_password_rules(password, person)
    return credentials.hash_password(password)


def set_password(conn: Connection, person: str, password_hash: str, *, actor: str, now: float,
                 detail: Mapping[str, Any] | None = None, keep: str | None = None) -> int:
    """Set (or reset) the password; unlocks the login and ends its sessions. The number of sessions ended."""
    logins.set_password(conn, person, password_hash, now)
    ended = logins.end_sessions_of(conn, person, keep=keep)
    q.audit(conn, now, actor, "user.passwd", f"person:{person}", detail)
    return ended


def enrol_totp(conn: Connection, box: SecretBox, person: str, *, actor: str, now: float,
               detail: Mapping[str, Any] | None = None, keep: str | None = None) -> str | None:
    """A new TOTP secret for the person (replacing any before it), stored encrypted; the secret, to show
    once, or None when the person has no login yet (a password comes first)."""
    if logins.get_login(conn, person) is None:
        return None
    secret = credentials.new_totp_secret()
    logins.update_login(conn, person, totp_secret=box.encrypt(secret), totp_last_step=None, updated_at=now)
    logins.end_sessions_of(conn, person, keep=keep)
    q.audit(conn, now, actor, "user.totp.enrol", f"person:{person}", detail)
    return secret


def remove_totp(conn: Connection, person: str, *, actor: str, now: float, detail: Mapping[str, Any] | None = None,
                keep: str | None = None) -> bool:
    """Remove the second factor; False when the person has no login."""
    if not logins.update_login(conn, person, totp_secret=None, totp_last_step=None, updated_at=now):
        return False
    logins.end_sessions_of(conn, person, keep=keep)
    q.audit(conn, now, actor, "user.totp.disable", f"person:{person}", detail)
    return True


def unlock(conn: Connection, person: str, *, actor: str, now: float, detail: Mapping[str, Any] | None = None) -> bool:
    """Clear the count of wrong passwords and any lock; False when the person has no login."""
    if not logins.update_login(conn, person, failed=0, locked_until=None):
        return False
    q.audit(conn, now, actor, "user.unlock", f"person:{person}", detail)
    return True
