"""Roles, passwords, TOTP codes and the login flow against a real SQLite store (clock injected)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from collector.auth import login
from collector.auth import secrets as credentials
from collector.auth.roles import Permission, allowed, needs_second_factor, permissions
from collector.secrets import SecretBox
from collector.store import logins
from collector.store.sql import SqlStore, sqlite_url


def test_roles_grow_from_viewer_to_admin_and_only_the_director_and_admin_read_the_audit_log() -> None:
    assert permissions(["viewer"]) == {Permission.READ}
    assert permissions(["viewer"]) < permissions(["operator"]) < permissions(["on-call"]) < permissions(["director"])
    assert permissions(["admin"]) == set(Permission)
    assert [r for r in ("viewer", "operator", "on-call", "director", "admin") if allowed([r], Permission.AUDIT_READ)] == [
        "director", "admin"]
    assert allowed(["viewer", "operator"], Permission.MAINTENANCE) and not allowed(["unknown"], Permission.READ)
    assert needs_second_factor(["admin"]) and not needs_second_factor(["director"])
    assert needs_second_factor(["director"], ["director"])


@pytest.mark.parametrize(("password", "problem"), [
    ("short", "too short"), ("x" * 300, "too long"), ("li.na-is-my-password", "person's id"), ("aaaaaaaaaaaa", "too few")])
def test_passwords_that_break_the_rules_are_refused(password: str, problem: str) -> None:
    with pytest.raises(credentials.WeakPassword, match=problem):
        credentials.check_password_rules(password, "li.na")


def test_a_totp_code_is_valid_one_step_either_side_and_only_once() -> None:
    secret, now = credentials.new_totp_secret(), 1_800_000_000.0
    totp = pyotp.TOTP(secret)
    step = credentials.totp_step(secret, totp.at(now), now, None)
    assert step == int(now // 30)
    assert credentials.totp_step(secret, totp.at(now - 30), now, None) == step - 1  # a slow phone
    assert credentials.totp_step(secret, totp.at(now - 90), now, None) is None  # too old
    assert credentials.totp_step(secret, totp.at(now), now, step) is None  # used already
    assert credentials.totp_step(secret, "12345", now, None) is None and credentials.totp_step(secret, "abcdef", now, None) is None


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sa.Connection]:
    store = SqlStore.open(sqlite_url(tmp_path / "db.sqlite"))
    engine = sa.create_engine(sqlite_url(tmp_path / "db.sqlite"))
    with engine.begin() as connection:
        yield connection
    engine.dispose()
    asyncio.run(store.close())


def test_five_wrong_passwords_lock_the_login_for_fifteen_minutes(conn: sa.Connection) -> None:
    logins.set_password(conn, "li.na", credentials.hash_password("a good passphrase"), 0.0)
    kw = {"second_factor_roles": ["admin"]}
    for n in range(5):
        assert not login.password_login(conn, "li.na", ["on-call"], "wrong", 100.0 + n, **kw).ok
    locked = login.password_login(conn, "li.na", ["on-call"], "a good passphrase", 200.0, **kw)
    assert not locked.ok and "try again after 14 min" in locked.reason  # locked at 104 s, 96 s ago
    later = login.password_login(conn, "li.na", ["on-call"], "a good passphrase", 104.0 + 15 * 60 + 1, **kw)
    assert later.ok and later.session_id and not later.second_factor
    assert login.current(conn, later.session_id, 2000.0) is not None
    assert login.current(conn, later.session_id, 2000.0 + login.IDLE + 61) is None  # idle too long: gone
    unknown = login.password_login(conn, "nobody", None, "a good passphrase", 300.0, **kw)
    assert not unknown.ok and unknown.reason == login.REFUSED


def test_the_second_factor_completes_the_login_with_a_new_session(conn: sa.Connection, tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "secret.key")
    secret = credentials.new_totp_secret()
    logins.set_password(conn, "ad.min", credentials.hash_password("a good passphrase"), 0.0)
    refused = login.password_login(conn, "ad.min", ["admin"], "a good passphrase", 10.0, second_factor_roles=["admin"])
    assert not refused.ok and "second factor" in refused.reason
    logins.update_login(conn, "ad.min", totp_secret=box.encrypt(secret))
    first = login.password_login(conn, "ad.min", ["admin"], "a good passphrase", 20.0, second_factor_roles=["admin"])
    assert first.ok and first.second_factor and first.session_id
    waiting = login.current(conn, first.session_id, 21.0)
    assert waiting is not None and not waiting.second_factor_ok
    done = login.second_factor(conn, box, first.session_id, pyotp.TOTP(secret).at(25.0), 25.0)
    assert done.ok and done.session_id != first.session_id
    assert login.current(conn, first.session_id, 26.0) is None
    full = login.current(conn, done.session_id or "", 26.0)
    assert full is not None and full.second_factor_ok
