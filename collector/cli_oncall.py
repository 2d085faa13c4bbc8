"""``schoolops oncall now|show``: who is on call, and the coming week's shifts.

The on-call file is ``--file FILE``, else the collector config's ``oncall_file``. Times are shown in
the file's time zone, whatever the machine's is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from collector.cli import UsageError, _print, _settings, store_options


def _load(args: argparse.Namespace) -> Any:
    from collector.notify.oncall import load_oncall

    path = args.file or getattr(_settings(args), "oncall_file", None)
    if not path:
        raise UsageError("no on-call file: pass --file FILE, or set oncall_file in the collector config")
    return load_oncall(path)


def _local(ts: float, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %a %H:%M")


def _person(person: Any) -> dict[str, Any]:
    return {"id": person.id, "name": person.name, "language": str(person.language),
            "contacts": [{"channel": c.channel, "address": c.address} for c in person.contacts]}


def cmd_now(args: argparse.Namespace) -> int:
    from collector.notify.oncall import on_call_at

    config, now = _load(args), time.time()
    duty = on_call_at(config, now)
    if args.json:
        print(json.dumps({"at": dt.datetime.fromtimestamp(now, ZoneInfo(config.timezone)).isoformat(timespec="seconds"),
                          "timezone": config.timezone, "primary": _person(duty.primary), "backup": _person(duty.backup),
                          "source": duty.source}, ensure_ascii=False, indent=2))
        return 0
    print(f"on call at {_local(now, config.timezone)} ({config.timezone}):")
    for role, person in (("primary", duty.primary), ("backup", duty.backup)):
        first = f", first reached by {person.contacts[0].channel}" if person.contacts else ""
        print(f"  {role + ':':<9}{person.name} ({person.id}, {person.language}{first})")
    print(f"  why:     {duty.source}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from collector.notify.oncall import shifts

    config = _load(args)
    rows = [{"start": _local(s.start, config.timezone), "end": _local(s.end, config.timezone),
             "start_ts": s.start, "end_ts": s.end, "primary": f"{s.primary.name} ({s.primary.id})",
             "backup": f"{s.backup.name} ({s.backup.id})", "primary_id": s.primary.id, "backup_id": s.backup.id,
             "source": s.source}
            for s in shifts(config, time.time(), args.days)]
    if not args.json:
        print(f"on-call shifts, the next {args.days} days ({config.timezone}):")
    _print(args, rows, ["start", "end", "primary", "backup", "source"])
    return 0


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> Any:
    def options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--file", help="the on-call file (default: oncall_file in the collector config)")
        p.add_argument("--json", action="store_true")
        store_options(p)
        return p

    oncall = sub.add_parser("oncall", help="who is on call").add_subparsers(dest="oncall_command", required=True, metavar="ACTION")
    options(command("now", cmd_now, "who is primary and backup on call now, and why", oncall))
    p = options(command("show", cmd_show, "the on-call shifts of the coming week", oncall))
    p.add_argument("--week", dest="days", action="store_const", const=7, default=7,
                   help="the next 7 days (the default)")
    return oncall
