"""``schoolops incidents|maintenance|report-fault|measures|api-token|rules``: the people's commands.

They act on the store directly (on the collector's host), through the same transaction functions
as the API, so the timeline and the audit log record the same things. The actor is ``--as NAME``,
else ``$SCHOOLOPS_USER``, else the login name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import time
from collections.abc import Callable
from typing import Any

from collector.cli import UsageError, _print, _query, _settings, store_options


def actor(args: argparse.Namespace) -> str:
    name = args.actor or os.environ.get("SCHOOLOPS_USER") or getpass.getuser()
    if not name or len(name) > 64:
        raise UsageError("name who is acting with --as NAME (at most 64 characters)")
    return name


def when(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(text: str) -> float:
    """'2026-11-24 18:00', an ISO time, or a duration from now ('2h', '30m')."""
    from schoolops.units import Seconds

    try:
        return time.time() + float(Seconds.parse(text))
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is neither a time (2026-11-24 18:00) nor a duration from now (2h)") from None
    return moment.timestamp()


def _incident_row(i: Any) -> dict[str, Any]:
    return {"id": i.id, "state": i.state.value, "severity": i.severity.label, "type": i.type.value, "asset": i.asset,
            "site": i.site, "title": i.title, "opened": when(i.opened_at), "owner": i.owner, "held": i.hold}


def cmd_list(args: argparse.Namespace) -> int:
    from collector.domain import Severity
    from collector.store import incidents as q

    states = args.state.split(",") if args.state else (["open", "acknowledged", "resolved", "reviewed"] if not args.all else None)
    max_severity = int(Severity.parse(args.severity)) if args.severity else None
    found = _query(args, lambda c: q.list_incidents(c, states=states, asset=args.asset, site=args.site,
                                                   max_severity=max_severity))
    rows = [_incident_row(i) for i in found]
    _print(args, rows, ["id", "state", "severity", "type", "asset", "title", "opened", "owner"])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from collector.incidents.actions import IncidentNotFound
    from collector.store import incidents as q

    def read(conn: Any) -> dict[str, Any]:
        incident = q.get_incident(conn, args.id)
        if incident is None:
            raise IncidentNotFound(f"no incident {args.id}")
        return {"incident": incident, "faults": q.incident_faults(conn, args.id), "timeline": q.events(conn, args.id),
                "measures": q.measures(conn, args.id)}

    data = _query(args, read)
    incident = data["incident"]
    if args.json:
        print(json.dumps({
            **incident.as_dict(),
            "faults": [f.as_dict() for f in data["faults"]],
            "timeline": [e.__dict__ for e in data["timeline"]], "measures": [m.__dict__ for m in data["measures"]],
        }, ensure_ascii=False, indent=2))
        return 0
    print(f"incident {incident.id} [{incident.state.value}] {incident.severity.label} {incident.severity.title_en} "
          f"({incident.severity.title_zh}) {incident.type.value}\n  {incident.title}\n  why: {incident.reason}")
    if incident.hold:
        print(f"  notifications {incident.hold}")
    if incident.rca:
        print(f"  root cause: {incident.rca}")
    for m in data["measures"]:
        print(f"  measure {m.id}: {m.description} (owner {m.owner}, due {m.due}{', done' if m.done_at else ''})")
    print("faults:")
    for f in data["faults"]:
        extra = f" — consequence of {f.consequence_of}" if f.consequence_of else ""
        print(f"  {'ACTIVE ' if f.active else 'cleared'} {f.severity.label} {f.asset}: {f.summary}{extra}")
    print("timeline:")
    for e in data["timeline"]:
        print(f"  {when(e.at)}  {e.kind:<16} {e.actor:<12} {e.text}")
    return 0


def _transition(action_name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from collector.incidents import actions
        from collector.incidents.lifecycle import Action

        incident = _query(args, lambda c: actions.transition(c, args.id, Action(action_name), actor=actor(args),
                                                             at=time.time(), note=args.note))
        print(f"incident {incident.id} is {incident.state.value}")
        return 0

    return run


def cmd_note(args: argparse.Namespace) -> int:
    from collector.incidents import actions

    _query(args, lambda c: actions.add_note(c, args.id, actor=actor(args), at=time.time(), text=args.text))
    print(f"note added to incident {args.id}")
    return 0


def cmd_rca(args: argparse.Namespace) -> int:
    from collector.incidents import actions

    measures = []
    for spec in args.measure or []:
        parts = spec.split("|")
        if len(parts) != 3:
            raise UsageError(f"--measure takes 'DESCRIPTION|OWNER|YYYY-MM-DD', got {spec!r}")
        measures.append(actions.MeasureInput(parts[0].strip(), parts[1].strip(), parts[2].strip()))
    _query(args, lambda c: actions.submit_rca(c, args.id, actor=actor(args), at=time.time(), rca=args.rca, measures=measures))
    print(f"incident {args.id}: analysis recorded ({len(measures)} preventive measure(s))")
    return 0


def cmd_measure_list(args: argparse.Namespace) -> int:
    from collector.store import incidents as q

    today = dt.date.today().isoformat()
    rows = [{"id": m.id, "incident": m.incident_id, "description": m.description, "owner": m.owner, "due": m.due,
             "state": "done" if m.done_at else ("OVERDUE" if m.due < today else "open"), "done_by": m.done_by}
            for m in _query(args, lambda c: q.measures(c, open_only=not args.all))]
    _print(args, rows, ["id", "incident", "state", "due", "owner", "description"])
    return 0


def cmd_measure_done(args: argparse.Namespace) -> int:
    from collector.incidents import actions

    _query(args, lambda c: actions.complete_measure(c, args.id, actor=actor(args), at=time.time()))
    print(f"preventive measure {args.id} done")
    return 0


def cmd_maintenance_add(args: argparse.Namespace) -> int:
    from collector.incidents import windows
    from collector.store import incidents as q
    from schoolops.units import Seconds

    scope = {"assets": args.asset or [], "sites": args.site or [], "roles": args.role or [],
             "labels": dict(label.split("=", 1) for label in args.label or [])}
    starts_at = parse_time(args.start) if args.start else time.time()
    ends_at = parse_time(args.end)
    try:
        recurrence = {"cron": args.cron, "duration": float(Seconds.parse(args.duration)), "timezone": args.timezone} if args.cron else None
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    try:
        windows.check(scope, starts_at, ends_at, args.owner, args.reason, recurrence)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    who = actor(args)

    def add(conn: Any) -> int:
        window_id = q.add_window(conn, scope=scope, starts_at=starts_at, ends_at=ends_at, owner=args.owner,
                                 reason=args.reason, recurrence=recurrence, at=time.time(), actor=who)
        q.audit(conn, time.time(), who, "maintenance.add", f"maintenance:{window_id}", {"scope": scope})
        return window_id

    window_id = _query(args, add)
    print(f"maintenance window {window_id} until {when(ends_at)} (owner {args.owner})")
    return 0


def cmd_maintenance_list(args: argparse.Namespace) -> int:
    from collector.store import incidents as q

    now = time.time()
    rows = [{"id": w.id, "scope": json.dumps(w.scope, ensure_ascii=False), "starts": when(w.starts_at),
             "ends": when(w.ended_at or w.ends_at), "owner": w.owner, "reason": w.reason,
             "recurring": w.recurrence["cron"] if w.recurrence else None,
             "state": "ended" if (w.ended_at or w.ends_at) <= now else ("active" if w.starts_at <= now else "planned")}
            for w in _query(args, lambda c: q.windows(c))]
    _print(args, rows, ["id", "state", "starts", "ends", "owner", "reason", "scope"])
    return 0


def cmd_maintenance_end(args: argparse.Namespace) -> int:
    from collector.store import incidents as q

    who, now = actor(args), time.time()

    def end(conn: Any) -> bool:
        done = q.end_window(conn, args.id, now)
        if done:
            q.audit(conn, now, who, "maintenance.end", f"maintenance:{args.id}")
        return done

    if not _query(args, end):
        raise UsageError(f"maintenance window {args.id} does not exist or has ended already")
    print(f"maintenance window {args.id} ended")
    return 0


def cmd_report_fault(args: argparse.Namespace) -> int:
    from collector.domain import FaultType, Severity
    from collector.store import incidents as q

    if (args.asset is None) == (args.site is None):
        raise UsageError("name either --asset or --site (the location of the fault)")
    try:
        severity, fault_type = Severity.parse(args.severity), FaultType(args.type)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report_id = _query(args, lambda c: q.add_fault_report(
        c, asset=args.asset, site=args.site, description=args.description, type=fault_type, severity=severity,
        reporter=actor(args), at=time.time()))
    print(f"fault report {report_id} recorded; the collector opens its incident within a few seconds")
    return 0


def cmd_api_token_create(args: argparse.Namespace) -> int:
    from collector import tokens
    from collector.store.sql import create_api_token

    if not args.user or len(args.user) > 64:
        raise UsageError("a user name of 1-64 characters")
    issued = tokens.issue(args.user, time.time())
    _query(args, lambda c: create_api_token(c, issued.record.id, args.user, issued.record.secret_hash, issued.record.created_at))
    print(issued.token)
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from collector.rules.loader import load_rules
    from pathlib import Path

    directory = Path(args.dir) if args.dir else _settings(args).rules_path
    rules = load_rules(directory)
    print(f"{directory}: OK ({len(rules.rules)} rules)")
    return 0


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> Any:
    def acting(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--as", dest="actor", help="who is acting (default: $SCHOOLOPS_USER, else your login name)")
        store_options(p)
        return p

    inc = sub.add_parser("incidents", help="incidents").add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    p = acting(command("list", cmd_list, "list incidents (not closed, unless --all or --state)", inc))
    p.add_argument("--state", help="comma-separated: open,acknowledged,resolved,reviewed,closed")
    p.add_argument("--all", action="store_true")
    p.add_argument("--asset")
    p.add_argument("--site")
    p.add_argument("--severity", help="this severity or worse, e.g. P2")
    p.add_argument("--json", action="store_true")
    p = acting(command("show", cmd_show, "an incident with its faults, timeline and measures", inc))
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    for name, action, help_ in (("ack", "acknowledge", "acknowledge (you become the owner)"), ("resolve", "resolve", "resolve"),
                                ("review", "review", "mark reviewed (P1/P2 need a root-cause analysis)"),
                                ("close", "close", "close (P1/P2 need review, an RCA and a preventive measure)"),
                                ("reopen", "reopen", "reopen a resolved incident")):
        p = acting(command(name, _transition(action), help_, inc))
        p.add_argument("id", type=int)
        p.add_argument("--note", help="a note for the timeline")
    p = acting(command("note", cmd_note, "add a note to the timeline", inc))
    p.add_argument("id", type=int)
    p.add_argument("text")
    p = acting(command("rca", cmd_rca, "record the root-cause analysis and preventive measures", inc))
    p.add_argument("id", type=int)
    p.add_argument("--rca", help="the root-cause analysis")
    p.add_argument("--measure", action="append", help="'DESCRIPTION|OWNER|YYYY-MM-DD' (repeatable)")

    measures = sub.add_parser("measures", help="preventive measures").add_subparsers(dest="measures_command", required=True, metavar="ACTION")
    p = acting(command("list", cmd_measure_list, "preventive measures not done yet (--all: every one)", measures))
    p.add_argument("--all", action="store_true")
    p.add_argument("--json", action="store_true")
    p = acting(command("done", cmd_measure_done, "mark a preventive measure done", measures))
    p.add_argument("id", type=int)

    maint = sub.add_parser("maintenance", help="maintenance windows").add_subparsers(dest="maintenance_command", required=True, metavar="ACTION")
    p = acting(command("add", cmd_maintenance_add, "add a window: faults inside are recorded, not notified", maint))
    p.add_argument("--asset", action="append")
    p.add_argument("--site", action="append")
    p.add_argument("--role", action="append")
    p.add_argument("--label", action="append", help="KEY=VALUE (all must match)")
    p.add_argument("--start", help="when it starts (default now): '2026-11-24 22:00' or a duration from now")
    p.add_argument("--end", required=True, help="when it ends: '2026-11-25 02:00' or a duration from now ('2h')")
    p.add_argument("--owner", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--cron", help="recurring: active at each occurrence (cron syntax) within start..end")
    p.add_argument("--duration", default="1h", help="length of each recurring occurrence")
    p.add_argument("--timezone", default="Asia/Shanghai")
    p = acting(command("list", cmd_maintenance_list, "list windows", maint))
    p.add_argument("--json", action="store_true")
    p = acting(command("end", cmd_maintenance_end, "end a window now", maint))
    p.add_argument("id", type=int)

    p = acting(command("report-fault", cmd_report_fault, "report a fault seen by a person"))
    p.add_argument("description")
    p.add_argument("--asset")
    p.add_argument("--site", help="a location, when the fault is not tied to one asset")
    p.add_argument("--type", default="application", help="hardware, network, system, application, security, environment, capacity")
    p.add_argument("--severity", default="P4", help="the reporter's estimate (classification may raise it)")

    tok = sub.add_parser("api-token", help="API tokens for people and scripts").add_subparsers(dest="api_token_command", required=True, metavar="ACTION")
    p = command("create", cmd_api_token_create, "create an API token for a user; prints it once", tok)
    p.add_argument("user")
    store_options(p)

    rules = sub.add_parser("rules", help="rule files").add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    p = command("check", cmd_rules_check, "validate the rule files", rules)
    p.add_argument("dir", nargs="?", help="a rules folder (default: the collector's rules_dir)")
    store_options(p)
    return inc
