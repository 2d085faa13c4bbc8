"""``schoolops patrol list|check|run|runs|show|fill|sign|review``: the daily patrol from the command line.

``run`` queues a checklist for the collector and shows its progress; ``fill`` records a manual
item (value, normal or abnormal, note) as a named patroller; ``sign`` is the patroller's
signature (every manual item filled in first), ``review`` the director's, only after signing.
``show`` prints the report as text, or exports it as Markdown, CSV, JSON or printable HTML.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.cli import UsageError, _print, _query, _settings, store_options
from collector.cli_incidents import actor as actor_name
from collector.cli_incidents import when


def checklists_path(settings: Any) -> Path:
    return settings.runbooks_path / "patrol"


def _checklists(args: argparse.Namespace, folder: str | None = None) -> dict[str, Any]:
    from collector.patrol.loader import load_checklists
    return load_checklists(Path(folder) if folder else checklists_path(_settings(args)))


def cmd_list(args: argparse.Namespace) -> int:
    from collector.patrol.model import text_for

    rows = [{"name": c.name, "title": text_for(c.title, args.language), "schedule": c.schedule, "timezone": c.timezone,
             "items": sum(1 for _ in c.items())} for c in _checklists(args).values()]
    _print(args, rows, ["name", "title", "schedule", "timezone", "items"])
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from collector.runbooks.loader import load_runbooks

    settings = _settings(args)
    from collector.patrol.loader import load_checklists
    found = load_checklists(Path(args.folder) if args.folder else checklists_path(settings),
                            runbooks=set(load_runbooks(settings.runbooks_path)))
    print(f"{len(found)} checklists OK: {', '.join(sorted(found))}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from collector.patrol.service import _queue
    from collector.store import patrol as p

    if args.name not in _checklists(args):
        raise UsageError(f"no checklist named {args.name!r}; see schoolops patrol list")
    person = actor_name(args)
    run_id = _query(args, lambda c: _queue(c, args.name, person, time.time()))
    print(f"patrol run {run_id}: {args.name} queued; the collector runs it")
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        run, results = _query(args, lambda c: (p.get_run(c, run_id), p.results(c, run_id)))
        checked = len({(r.item, r.asset) for r in results})
        _progress(checked, run.total, run.state)
        if run.state not in ("queued", "running"):
            _progress_end()
            counts = {s: sum(1 for r in results if r.status == s) for s in ("normal", "abnormal", "not_checked", "pending")}
            print(f"patrol run {run_id}: {run.state}: {counts['normal']} normal, {counts['abnormal']} abnormal, "
                  f"{counts['not_checked']} not checked, {counts['pending']} to fill in")
            return 0
        time.sleep(0.5)
    _progress_end()
    print(f"patrol run {run_id}: still running; see schoolops patrol show {run_id}")
    return 0


BAR = 30


def _progress(done: int, total: int | None, state: str) -> None:
    """A progress bar on a terminal (stderr): checks done of the run's total, once the collector started it."""
    if not sys.stderr.isatty():
        return
    if total:
        filled = min(BAR, done * BAR // total)
        line = f"{state:<8} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} checks {done * 100 // total:3d}%"
    else:
        line = f"{state:<8} [{'.' * BAR}] waiting for the collector"
    sys.stderr.write(f"\r{line}")
    sys.stderr.flush()


def _progress_end() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n")


def cmd_runs(args: argparse.Namespace) -> int:
    from collector.store import patrol as p

    rows = [{"id": r.id, "checklist": r.checklist, "state": r.state, "started": when(r.started_at),
             "by": r.started_by, "signed_by": r.signed_by, "reviewed_by": r.reviewed_by}
            for r in _query(args, lambda c: p.list_runs(c, args.checklist))]
    _print(args, rows, ["id", "checklist", "state", "started", "by", "signed_by", "reviewed_by"])
    return 0


def report_for(settings: Any, run_id: int, language: str) -> Any:
    """The built report of a stored run (with the comparison to the previous run)."""
    from collector.cli import query
    from collector.notify.oncall import load_oncall
    from collector.patrol.loader import load_checklists
    from collector.patrol.records import build_report, report_inputs

    inputs = query(settings, lambda c: report_inputs(c, run_id))
    names: dict[str, str] = {}
    if settings.oncall_file:
        names = {person.id: person.name for person in load_oncall(settings.oncall_file).people}
    return build_report(inputs, load_checklists(checklists_path(settings)), names, language)


def cmd_show(args: argparse.Namespace) -> int:
    from collector.patrol import report

    built = report_for(_settings(args), args.id, args.language)
    if args.format == "json":
        text = json.dumps(report.to_json(built), ensure_ascii=False, indent=2)
    elif args.format == "csv":
        text = report.to_csv(built)
    elif args.format == "html":
        text = report.to_html(built)
    else:
        text = report.to_markdown(built)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def _person(args: argparse.Namespace, role: str | None = None) -> str:
    """The acting person; with ``role``, they must hold it in the on-call file."""
    person = actor_name(args)
    if role is None:
        return person
    from collector.notify.oncall import load_oncall

    settings = _settings(args)
    if not settings.oncall_file:
        raise UsageError(f"reviewing needs the on-call file (oncall_file): it says who holds the {role} role")
    found = next((x for x in load_oncall(settings.oncall_file).people if x.id == person), None)
    if found is None or role not in [r.value for r in found.roles]:
        raise UsageError(f"{person} does not hold the {role} role in {settings.oncall_file}")
    return person


def cmd_fill(args: argparse.Namespace) -> int:
    from collector.patrol import manual

    person = _person(args)
    checklists = _checklists(args)
    try:
        result = _query(args, lambda c: manual.fill(c, checklists, args.id, args.item, asset=args.asset or "",
                                                     status=args.status, value=args.value, note=args.note,
                                                     person=person, at=time.time()))
    except manual.Refused as exc:
        raise UsageError(str(exc)) from None
    print(f"patrol run {args.id}: {args.item}{' on ' + args.asset if args.asset else ''}: {result} by {person}")
    return 0


def _signature(kind: str) -> Callable[[argparse.Namespace], int]:
    def cmd(args: argparse.Namespace) -> int:
        from collector.patrol import manual

        person = _person(args, "director" if kind == "review" else None)
        try:
            _query(args, lambda c: (manual.sign if kind == "sign" else manual.review)(
                c, args.id, person=person, at=time.time(), note=getattr(args, "note", None)))
        except manual.Refused as exc:
            raise UsageError(str(exc)) from None
        print(f"patrol run {args.id}: {'signed' if kind == 'sign' else 'reviewed'} by {person}")
        return 0
    return cmd


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    patrol = sub.add_parser("patrol", help="the daily patrol: checklists, runs, reports, sign-off").add_subparsers(
        dest="patrol_command", required=True, metavar="ACTION")
    p = command("list", cmd_list, "the loaded checklists", patrol)
    p.add_argument("--language", default="en", choices=["en", "zh-CN", "zh-TW"])
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("check", cmd_check, "validate the checklists (and the runbooks they name)", patrol)
    p.add_argument("folder", nargs="?")
    store_options(p)
    p = command("run", cmd_run, "run a checklist now (the collector carries it out)", patrol)
    p.add_argument("name")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=600.0, help="how long to follow it (seconds)")
    p.add_argument("--as", dest="actor", help="who starts it")
    store_options(p)
    p = command("runs", cmd_runs, "patrol runs, newest first", patrol)
    p.add_argument("--checklist")
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("show", cmd_show, "a run's report", patrol)
    p.add_argument("id", type=int)
    p.add_argument("--format", choices=["text", "markdown", "csv", "json", "html"], default="markdown")
    p.add_argument("--language", default="zh-CN", choices=["en", "zh-CN", "zh-TW"])
    p.add_argument("-o", "--output", help="write to this file")
    store_options(p)
    p = command("fill", cmd_fill, "record a manual item's result", patrol)
    p.add_argument("id", type=int)
    p.add_argument("item")
    p.add_argument("--asset", help="the asset, for items about one (default: the site as a whole)")
    p.add_argument("--status", required=True, choices=["normal", "abnormal"])
    p.add_argument("--value", help="what was read, e.g. '45 %'")
    p.add_argument("--note")
    p.add_argument("--as", dest="actor", help="the patroller")
    store_options(p)
    p = command("sign", cmd_sign := _signature("sign"), "the patroller signs the run off", patrol)
    p.add_argument("id", type=int)
    p.add_argument("--as", dest="actor")
    store_options(p)
    p = command("review", _signature("review"), "the director reviews a signed run", patrol)
    p.add_argument("id", type=int)
    p.add_argument("--note")
    p.add_argument("--as", dest="actor")
    store_options(p)
    del cmd_sign
