"""The ``schoolops`` command: run the collector, start everything on one machine, manage tokens and TLS.

Only the standard library is imported at module level, so a server with just the agent installed
gets a clear message instead of a traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "schoolops-data"
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class UsageError(Exception):
    pass


def _settings(args: argparse.Namespace) -> Any:
    """The collector settings named by --config / $SCHOOLOPS_CONFIG, else defaults under the data dir."""
    from collector import settings as settings_mod

    config = args.config or os.environ.get("SCHOOLOPS_CONFIG")
    if config:
        return settings_mod.load(config)
    data_dir = Path(args.data_dir or os.environ.get("SCHOOLOPS_DATA_DIR") or DEFAULT_DATA_DIR).absolute()
    if (data_dir / "collector.yaml").exists():
        return settings_mod.load(data_dir / "collector.yaml")
    return settings_mod.CollectorSettings(data_dir=str(data_dir))


def _query(args: argparse.Namespace, fn: Callable[[Any], Any]) -> Any:
    """Run one store function in one transaction against the configured store."""
    return query(_settings(args), fn)


def query(settings: Any, fn: Callable[[Any], Any]) -> Any:
    from collector.store.sql import SqlStore

    settings.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = SqlStore.open(settings.store_url)
    try:
        return store.run_sync(fn)
    finally:
        store.engine.dispose()


def _print(args: argparse.Namespace, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    widths = [max([len(c)] + [len(str(r.get(c) if r.get(c) is not None else "-")) for r in rows]) for c in columns]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row.get(c) if row.get(c) is not None else "-").ljust(w) for c, w in zip(columns, widths, strict=True)))


def _ago(ts: float | None) -> str | None:
    return None if ts is None else f"{max(0, int(time.time() - ts))}s ago"


# --- commands -----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from collector.app import serve
    from schoolops import log

    settings = _settings(args)
    log.configure(settings.log.level, settings.log.format)
    # what the imports made lives as long as the process: full garbage collections need not walk it again
    gc.collect()
    gc.freeze()
    serve(settings)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from collector.up import up

    return up(args)


def issue_agent_token(settings: Any, asset: str) -> Any:
    """A new agent token for ``asset``, its hash stored; the token itself is returned once."""
    from collector import tokens
    from collector.store.sql import create_token

    issued = tokens.issue(asset, time.time())
    query(settings, lambda conn: create_token(conn, issued.record))
    return issued


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (mode 0600), replacing what was there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def cmd_token_create(args: argparse.Namespace) -> int:
    if not ASSET_NAME.match(args.asset):
        raise UsageError(
            f"{args.asset!r} is not a valid asset name: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    issued = issue_agent_token(_settings(args), args.asset)
    if args.output:
        write_private(Path(args.output), issued.token + "\n")
        print(f"token {issued.record.id} for asset {args.asset} written to {args.output}", file=sys.stderr)
    else:
        print(issued.token)
        print(f"(token {issued.record.id} for asset {args.asset}; shown once, the collector keeps only its hash)",
              file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from collector.store.sql import list_tokens

    rows = [
        {"id": t.id, "asset": t.asset, "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created_at)),
         "last_used": _ago(t.last_used_at), "revoked": t.revoked_at is not None}
        for t in _query(args, list_tokens)
    ]
    _print(args, rows, ["id", "asset", "created", "last_used", "revoked"])
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from collector.store.sql import revoke_token

    if not _query(args, lambda conn: revoke_token(conn, args.id, time.time())):
        raise UsageError(f"no active token with id {args.id!r} (see 'schoolops token list')")
    settings = _settings(args)
    print(f"token {args.id} revoked; the collector refuses it within {settings.ingest.token_cache:g} s")
    return 0


def cmd_assets_list(args: argparse.Namespace) -> int:
    from collector.store.sql import list_assets, list_streams

    assets, streams = _query(args, lambda conn: (list_assets(conn), list_streams(conn)))
    rows = []
    for a in assets:
        mine = [s for s in streams if s.asset == a.name]
        rows.append({
            "name": a.name, "kind": a.kind, "site": a.site, "role": a.role, "tier": a.tier,
            "labels_from": a.labels_source, "last_report": _ago(a.last_report_at),
            "last_report_at": a.last_report_at,
            "reports_applied": sum(s.applied for s in mine), "duplicates": sum(s.duplicates for s in mine),
            "missing": sum(s.missing for s in mine),
            "streams": [{"stream": s.stream, "last_seq": s.last_seq, "applied": s.applied,
                         "duplicates": s.duplicates, "missing": s.missing} for s in mine],
        })
    _print(args, rows, ["name", "kind", "site", "role", "tier", "last_report", "reports_applied", "missing"])
    return 0


def cmd_ca_init(args: argparse.Namespace) -> int:
    from collector.pki import init_ca

    path = init_ca(Path(args.dir), args.name, force=args.force)
    print(f"CA certificate: {path}\nGive this file to every agent as collector.ca_file; keep {Path(args.dir) / 'ca-key.pem'} private.")
    return 0


def cmd_cert_issue(args: argparse.Namespace) -> int:
    from collector.pki import issue_cert

    cert, key = issue_cert(Path(args.ca_dir), args.names, Path(args.out), days=args.days)
    print(f"certificate: {cert}\nkey:         {key}\nIn the collector config:\n  tls:\n    cert_file: {cert}\n    key_file: {key}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from collector import settings as settings_mod
    from collector.inventory import load_inventory

    from collector.calendar import SchoolCalendar
    from collector.notify.oncall import load_oncall
    from collector.rules.loader import load_rules

    settings = settings_mod.load(args.file)
    if settings.inventory_file:
        load_inventory(settings.inventory_file)
    rules = load_rules(settings.rules_path)
    if settings.calendar_file:
        SchoolCalendar.load(settings.calendar_file)
    from collector.runbooks.loader import check_approvers, load_runbooks

    runbooks = load_runbooks(settings.runbooks_path)
    if settings.oncall_file:
        oncall = load_oncall(settings.oncall_file)
        check_approvers(runbooks, {role.value for p in oncall.people for role in p.roles}, settings.oncall_file)
    print(f"{args.file}: OK ({len(rules.rules)} rules, {len(runbooks)} runbooks; inventory, calendar and on-call "
          "files checked where set)")
    return 0


# --- parser -------------------------------------------------------------------------------------


def store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="collector config file (default: $SCHOOLOPS_CONFIG, else DATA_DIR/collector.yaml)")
    parser.add_argument("--data-dir", help=f"data directory (default: $SCHOOLOPS_DATA_DIR, else ./{DEFAULT_DATA_DIR})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="schoolops", description="schoolops: monitoring and operations for a school's IT office.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable[[argparse.Namespace], int], help_: str, parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    from collector import cli_admin, cli_incidents, cli_inventory, cli_oncall, cli_patrol, cli_reports, cli_runbooks, cli_upgrades, cli_users

    incidents = cli_incidents.register(sub, command)
    cli_admin.register(sub, command, incidents)
    cli_oncall.register(sub, command)
    cli_inventory.register(sub, command)
    cli_inventory.register_backups(sub, command)
    cli_runbooks.register(sub, command)
    cli_patrol.register(sub, command)
    cli_upgrades.register(sub, command)
    cli_users.register(sub, command)
    cli_reports.register(sub, command)

    p = command("serve", cmd_serve, "run the collector")
    store_options(p)
    p = command("up", cmd_up, "run a collector and an agent reporting this machine (SQLite, no other service)")
    p.add_argument("--data-dir", help=f"where everything is kept (default: $SCHOOLOPS_DATA_DIR, else ./{DEFAULT_DATA_DIR})")
    p.add_argument("--host", default=None, help="collector listen address for a new data dir (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="collector port for a new data dir (default 8750)")
    p.add_argument("--interval", default="15s", help="the local agent's report interval (default 15s)")

    token = sub.add_parser("token", help="agent tokens").add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = command("create", cmd_token_create, "create a token for an asset; prints it once", token)
    p.add_argument("asset", help="the asset (server) name the agent reports as")
    p.add_argument("--output", "-o", help="write the token to this file (mode 0600) instead of printing it")
    store_options(p)
    p = command("list", cmd_token_list, "list tokens (never their secrets)", token)
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("revoke", cmd_token_revoke, "revoke a token by id", token)
    p.add_argument("id")
    store_options(p)

    assets = sub.add_parser("assets", help="assets").add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    p = command("list", cmd_assets_list, "list assets with their last report", assets)
    p.add_argument("--json", action="store_true")
    store_options(p)

    ca = sub.add_parser("ca", help="the small CA for TLS").add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    p = command("init", cmd_ca_init, "create a CA", ca)
    p.add_argument("--dir", required=True, help="directory for ca.pem and ca-key.pem")
    p.add_argument("--name", default="schoolops CA", help="the CA's common name")
    p.add_argument("--force", action="store_true", help="replace an existing CA")
    cert = sub.add_parser("cert", help="certificates").add_subparsers(dest="cert_command", required=True, metavar="ACTION")
    p = command("issue", cmd_cert_issue, "issue a server certificate for the collector", cert)
    p.add_argument("names", nargs="+", help="DNS names and IP addresses the agents use to reach the collector")
    p.add_argument("--ca-dir", required=True)
    p.add_argument("--out", required=True, help="directory for NAME.pem and NAME-key.pem")
    p.add_argument("--days", type=int, default=825)

    config = sub.add_parser("config", help="config files").add_subparsers(dest="config_command", required=True, metavar="ACTION")
    p = command("check", cmd_config_check, "validate a collector config and every file it names", config)
    p.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {"aiohttp", "prometheus_client", "sqlalchemy", "alembic", "cryptography"}:
            print(f"schoolops: this command needs the collector's dependencies: pip install 'schoolops[collector]' ({exc.name} is missing)",
                  file=sys.stderr)
            return 2
        raise
    except UsageError as exc:
        print(f"schoolops: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from schoolops import SchoolopsError

        if isinstance(exc, SchoolopsError):
            print(f"schoolops: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
