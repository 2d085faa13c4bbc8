"""``schoolops user passwd|totp|list|unlock``: web logins of the people in the on-call file.

The on-call file says who a person is and their roles; this sets how they log in to the web pages: a
password (read from standard input, never an argument, stored as an Argon2id hash) and, for a second
factor, a TOTP secret (stored encrypted; shown once, to add to an authenticator app).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from collector.cli import UsageError, _print, _query, _settings, store_options
from collector.cli_incidents import actor as actor_name


def _person(args: argparse.Namespace) -> Any:
    from collector.notify.oncall import load_oncall

    settings = _settings(args)
    if not settings.oncall_file:
        raise UsageError("people are named in the on-call file: set oncall_file in the collector config first")
    found = next((p for p in load_oncall(settings.oncall_file).people if p.id == args.person), None)
    if found is None:
        raise UsageError(f"{args.person!r} is not in the on-call file {settings.oncall_file}: add them with their roles")
    return found


def _box(args: argparse.Namespace) -> Any:
    from collector.secrets import SecretBox

    return SecretBox(_settings(args).data_path / "secret.key")


def cmd_passwd(args: argparse.Namespace) -> int:
    from collector.auth import accounts
    from collector.auth import secrets as credentials

    person = _person(args)
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"new password for {person.id}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.read().rstrip("\n")
    try:
        hashed = accounts.hash_new_password(password, person.id)
    except credentials.WeakPassword as exc:
        raise UsageError(f"{exc}; nothing changed") from None
    who, now = actor_name(args), time.time()
    ended = _query(args, lambda c: accounts.set_password(c, person.id, hashed, actor=who, now=now))
    print(f"password of {person.id} set" + (f"; {ended} session(s) logged out" if ended else ""))
    return 0


def cmd_totp(args: argparse.Namespace) -> int:
    from collector.auth import accounts
    from collector.auth import secrets as credentials

    person, who, now = _person(args), actor_name(args), time.time()
    if args.disable:
        if not _query(args, lambda c: accounts.remove_totp(c, person.id, actor=who, now=now)):
            raise UsageError(f"{person.id} has no password yet: schoolops user passwd {person.id} first")
        print(f"second factor of {person.id} removed")
        return 0
    box = _box(args)
    secret = _query(args, lambda c: accounts.enrol_totp(c, box, person.id, actor=who, now=now))
    if secret is None:
        raise UsageError(f"{person.id} has no password yet: schoolops user passwd {person.id} first")
    print(f"second factor of {person.id} enrolled; add it to an authenticator app now (shown only once):")
    print(f"  secret: {secret}")
    print(f"  {credentials.provisioning_uri(secret, person.id)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from collector.auth import accounts
    from collector.notify.oncall import load_oncall

    settings = _settings(args)
    if not settings.oncall_file:
        raise UsageError("people are named in the on-call file: set oncall_file in the collector config first")
    people = load_oncall(settings.oncall_file).people
    now = time.time()
    found = _query(args, lambda c: accounts.states(c, people, now, settings.auth.second_factor_roles))
    rows = [{"id": x.id, "name": x.name, "roles": ",".join(x.roles), "password": "set" if x.password else "-",
             "second_factor": "yes" if x.second_factor else ("NEEDED" if x.second_factor_needed else "no"),
             "locked": "yes" if x.locked else "no"} for x in found]
    _print(args, rows, ["id", "name", "roles", "password", "second_factor", "locked"])
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    from collector.auth import accounts

    person, who, now = _person(args), actor_name(args), time.time()
    if not _query(args, lambda c: accounts.unlock(c, person.id, actor=who, now=now)):
        raise UsageError(f"{person.id} has no login")
    print(f"{person.id} unlocked")
    return 0


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    users = sub.add_parser("user", help="web logins: passwords and second factors").add_subparsers(
        dest="user_command", required=True, metavar="ACTION")
    p = command("passwd", cmd_passwd, "set a person's password (read from standard input)", users)
    p.add_argument("person")
    p.add_argument("--as", dest="actor", help="who sets it (audit log)")
    store_options(p)
    p = command("totp", cmd_totp, "enrol (or --disable) a person's TOTP second factor", users)
    p.add_argument("person")
    p.add_argument("--disable", action="store_true")
    p.add_argument("--as", dest="actor")
    store_options(p)
    p = command("list", cmd_list, "people, their roles and how they log in", users)
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("unlock", cmd_unlock, "unlock a login after too many wrong passwords", users)
    p.add_argument("person")
    p.add_argument("--as", dest="actor")
    store_options(p)
