"""``schoolops inventory list|set|remove|import``: the inventory file, edited safely.

Every change validates the whole inventory before the file is replaced (atomically, the previous
one kept as ``.bak``); a running collector picks it up on ``kill -HUP`` (``systemctl reload``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from collector.cli import UsageError, _print, _settings, store_options
from schoolops.units import enc_hook


def _path(args: argparse.Namespace) -> Path:
    settings = _settings(args)
    if not settings.inventory_file:
        raise UsageError("set inventory_file in the collector config first (the inventory is that file)")
    return Path(settings.inventory_file)


def _load(path: Path) -> list[Any]:
    from collector.inventory import load_entries

    return load_entries(path) if path.exists() else []


def cmd_list(args: argparse.Namespace) -> int:
    entries = _load(_path(args))
    rows = [{"name": e.name, "kind": e.kind, "site": e.site, "role": e.role, "tier": str(e.tier),
             "address": e.address, "parents": ";".join(e.parents), "snmp": e.snmp.version if e.snmp else None,
             "cli": e.cli.device_type if e.cli else None, "probes": len(e.probes)} for e in entries]
    if args.json:
        print(json.dumps([msgspec.to_builtins(e, enc_hook=enc_hook) for e in entries], ensure_ascii=False, indent=2))
        return 0
    _print(args, rows, ["name", "kind", "site", "role", "tier", "address", "parents", "snmp", "cli", "probes"])
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from collector.inventory import InventoryEntry, write_entries
    from schoolops.conf import convert

    path = _path(args)
    entries = _load(path)
    current = next((e for e in entries if e.name == args.name), None)
    data: dict[str, Any] = msgspec.to_builtins(current, enc_hook=enc_hook) if current else {"name": args.name}
    for pair in args.fields:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE (e.g. site=north-building, snmp.version=2c), got {pair!r}")
        *parents, last = key.split(".")
        target = data
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise UsageError(f"{key}: {part} is not a section")
        if value == "":
            target.pop(last, None)
        else:
            target[last] = [p for p in value.split(";") if p] if last == "parents" else value
    entry = convert(data, InventoryEntry, source=f"inventory set {args.name}")
    updated = [entry if e.name == args.name else e for e in entries] if current else [*entries, entry]
    write_entries(path, updated)
    print(f"{'changed' if current else 'added'} {args.name} in {path}; reload the collector to apply it")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from collector.inventory import write_entries

    path = _path(args)
    entries = _load(path)
    if not any(e.name == args.name for e in entries):
        raise UsageError(f"{args.name!r} is not in the inventory")
    children = [e.name for e in entries if args.name in e.parents]
    if children:
        raise UsageError(f"{args.name} is the parent of {', '.join(children)}: change their parents first")
    write_entries(path, [e for e in entries if e.name != args.name])
    print(f"removed {args.name} from {path}; reload the collector to apply it")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from collector.inventory import read_csv, write_entries

    path = _path(args)
    entries = _load(path)
    new = read_csv(args.csv)
    existing = {e.name for e in entries}
    clashes = [e.name for e in new if e.name in existing]
    if clashes and not args.replace:
        raise UsageError(f"already in the inventory: {', '.join(clashes)} (use --replace to overwrite them); nothing imported")
    replaced = {e.name: e for e in new}
    merged = [replaced.pop(e.name, e) for e in entries] + list(replaced.values())
    write_entries(path, merged)
    print(f"imported {len(new)} asset(s) from {args.csv} into {path}; reload the collector to apply them")
    return 0


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    inv = sub.add_parser("inventory", help="the inventory: devices, services, servers").add_subparsers(
        dest="inventory_command", required=True, metavar="ACTION")
    p = command("list", cmd_list, "list the inventory", inv)
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("set", cmd_set, "add an asset or change its fields: KEY=VALUE (dotted for sections, '' removes)", inv)
    p.add_argument("name")
    p.add_argument("fields", nargs="+", metavar="KEY=VALUE",
                   help="e.g. kind=network address=10.0.0.2 site=north tier=core parents=core-sw-1 "
                        "snmp.version=2c snmp.community_secret=snmp.public")
    store_options(p)
    p = command("remove", cmd_remove, "remove an asset (not while others name it as parent)", inv)
    p.add_argument("name")
    store_options(p)
    p = command("import", cmd_import, "import assets from a CSV file (every row or nothing)", inv)
    p.add_argument("csv")
    p.add_argument("--replace", action="store_true", help="overwrite assets that exist already")
    store_options(p)


def _repo(args: argparse.Namespace) -> Any:
    from collector.network.backup import ConfigRepo

    return ConfigRepo(_settings(args).data_path / "config-backups")


def cmd_backups_history(args: argparse.Namespace) -> int:
    import time

    rows = [{"commit": commit[:12], "at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)), "change": message}
            for commit, at, message in _repo(args).history(args.device)]
    _print(args, rows, ["commit", "at", "change"])
    return 0


def cmd_backups_diff(args: argparse.Namespace) -> int:
    print(_repo(args).diff(args.device, args.old, args.new), end="")
    return 0


def cmd_backups_show(args: argparse.Namespace) -> int:
    print(_repo(args).show(args.device, args.commit), end="")
    return 0


def register_backups(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    backups = sub.add_parser("backups", help="network device configuration history").add_subparsers(
        dest="backups_command", required=True, metavar="ACTION")
    p = command("history", cmd_backups_history, "a device's configuration changes, newest first", backups)
    p.add_argument("device")
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("diff", cmd_backups_diff, "what changed (default: the last change)", backups)
    p.add_argument("device")
    p.add_argument("old", nargs="?")
    p.add_argument("new", nargs="?")
    store_options(p)
    p = command("show", cmd_backups_show, "a stored configuration (default: the latest)", backups)
    p.add_argument("device")
    p.add_argument("commit", nargs="?")
    store_options(p)
