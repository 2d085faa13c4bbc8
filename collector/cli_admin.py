"""``schoolops secret set|list|delete`` and ``schoolops incidents security-reported``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from collector.cli import UsageError, _print, _query, _settings, store_options


def _box(args: argparse.Namespace) -> Any:
    from collector.secrets import SecretBox

    return SecretBox(_settings(args).data_path / "secret.key")


def cmd_secret_set(args: argparse.Namespace) -> int:
    from collector.cli_incidents import actor
    from collector.secrets import set_secret

    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"value of secret {args.name}: ")
    else:
        value = sys.stdin.read().rstrip("\n")
    box = _box(args)
    who = actor(args)
    _query(args, lambda c: set_secret(c, box, args.name, value, at=time.time(), actor=who))
    print(f"secret {args.name} stored encrypted; restart the collector (or reload) to use it")
    return 0


def cmd_secret_list(args: argparse.Namespace) -> int:
    from collector.secrets import list_secrets

    rows = [{"name": n, "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(at)), "by": by}
            for n, at, by in _query(args, list_secrets)]
    _print(args, rows, ["name", "updated", "by"])
    return 0


def cmd_secret_delete(args: argparse.Namespace) -> int:
    from collector.secrets import delete_secret

    if not _query(args, lambda c: delete_secret(c, args.name)):
        raise UsageError(f"no secret named {args.name!r}")
    print(f"secret {args.name} deleted")
    return 0


def cmd_security_reported(args: argparse.Namespace) -> int:
    from collector.cli_incidents import actor
    from collector.store import incidents as q
    from collector.store import outbox

    who, now = actor(args), time.time()

    def mark(conn: Any) -> bool:
        done = outbox.mark_security_reported(conn, args.id, now, who, args.reference)
        if done:
            q.add_event(conn, args.id, now, "security_reported", who,
                        f"security incident reported to the higher authority by {who}: {args.reference}")
            q.audit(conn, now, who, "incident.security_reported", f"incident:{args.id}", {"reference": args.reference})
        return done

    if not _query(args, mark):
        raise UsageError(f"incident {args.id} has no open reporting clock (not a P1/P2 security incident, or reported already)")
    print(f"incident {args.id}: the upward report is recorded; reminders stop")
    return 0


def register(sub: Any, command: Callable[..., argparse.ArgumentParser], incidents_parser: Any | None = None) -> None:
    secret = sub.add_parser("secret", help="credentials, stored encrypted").add_subparsers(
        dest="secret_command", required=True, metavar="ACTION")
    p = command("set", cmd_secret_set, "store a secret; the value is read from standard input", secret)
    p.add_argument("name")
    p.add_argument("--as", dest="actor")
    store_options(p)
    p = command("list", cmd_secret_list, "secret names (never their values)", secret)
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("delete", cmd_secret_delete, "delete a secret", secret)
    p.add_argument("name")
    store_options(p)
    if incidents_parser is not None:
        p = command("security-reported", cmd_security_reported,
                    "record that a security incident was reported upward (stops the reminders)", incidents_parser)
        p.add_argument("id", type=int)
        p.add_argument("--reference", required=True, help="the report's number or where it went")
        p.add_argument("--as", dest="actor")
        store_options(p)
