"""``schoolops runbooks list|check|show|run|runs|record|approve|deny``.

``run`` queues a run for the collector to execute and follows it until it ends or waits for an
approval; ``--dry-run`` prints exactly what would run, on which asset, with variables resolved
and secrets masked, and touches nothing. ``approve`` / ``deny`` act as ``--as PERSON``, whose
roles come from the on-call file; nobody approves a run they started.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.cli import UsageError, _print, _query, _settings, store_options
from collector.cli_incidents import actor as actor_name
from collector.cli_incidents import when


def _runbooks(args: argparse.Namespace, folder: str | None = None) -> dict[str, Any]:
    from collector.runbooks.loader import load_runbooks

    return load_runbooks(Path(folder) if folder else _settings(args).runbooks_path)


def _entry(args: argparse.Namespace, asset: str) -> Any:
    from collector.inventory import load_entries

    settings = _settings(args)
    if not settings.inventory_file:
        return None
    return next((e for e in load_entries(settings.inventory_file) if e.name == asset), None)


def _summary(runbook: Any) -> str:
    if runbook.when is None:
        return "manual"
    w = runbook.when
    parts = [f"{k}={','.join(v) if isinstance(v, tuple) else v}" for k, v in
             (("severity", w.severity), ("type", w.type), ("rule", w.rule)) if v]
    parts += [f"{k}={v}" for k, v in (w.labels or {}).items()]
    return "when " + " ".join(parts)


def cmd_list(args: argparse.Namespace) -> int:
    rows = [{"name": rb.name, "starts": _summary(rb), "safe_for_automation": rb.safe_for_automation,
             "steps": len(rb.steps), "file": rb.source} for rb in _runbooks(args).values()]
    _print(args, rows, ["name", "starts", "safe_for_automation", "steps", "file"])
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from collector.notify.oncall import load_oncall
    from collector.runbooks.loader import check_approvers

    runbooks = _runbooks(args, args.folder)
    settings = _settings(args)
    if settings.oncall_file:
        oncall = load_oncall(settings.oncall_file)
        check_approvers(runbooks, {role.value for p in oncall.people for role in p.roles}, settings.oncall_file)
    print(f"{len(runbooks)} runbooks OK: {', '.join(sorted(runbooks))}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    runbooks = _runbooks(args)
    if args.name not in runbooks:
        raise UsageError(f"no runbook named {args.name!r}; known: {', '.join(sorted(runbooks))}")
    rb = runbooks[args.name]
    print(f"{rb.name}: {rb.description}\n  {_summary(rb)}; timeout {rb.timeout:g}s; "
          f"{'safe for automation' if rb.safe_for_automation else 'automatic runs need an approve step before changes'}")
    for name, value in rb.variables.items():
        print(f"  variable {name} = {value}")
    for i, step in enumerate(rb.steps, 1):
        flags = ", ".join(x for x in ("mutating" if step.mutating else "", f"on failure {step.on_failure.value}") if x)
        print(f"  {i}. {step.name} [{step.action}] ({flags})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from collector.runbooks import manual

    runbooks = _runbooks(args)
    variables = manual.parse_variables(args.var)
    try:
        target = _query(args, lambda c: manual.resolve_target(c, asset=args.asset, incident_id=args.incident))
        entry = _entry(args, target.asset)
        if args.dry_run:
            return _print_dry_run(manual.dry_run(runbooks, args.name, target, entry, variables), args, target.asset)
        actor = actor_name(args)
        run_id = _query(args, lambda c: manual.queue(c, runbooks, args.name, target, entry, variables, actor=actor,
                                                     now=time.time()))
    except manual.RequestRefused as exc:
        raise UsageError(str(exc)) from None
    print(f"run {run_id}: {args.name} on {target.asset} queued; the collector runs it")
    if args.no_wait:
        return 0
    return _follow(args, run_id, timeout=float(runbooks[args.name].timeout) + 60)


def _print_dry_run(steps: list[Any], args: argparse.Namespace, asset: str) -> int:
    if args.json:
        print(json.dumps([{"depth": d, "step": s.name, "action": s.action, "command": s.shown, "mutating": s.mutating,
                           "on_failure": s.on_failure, "timeout": s.timeout, "simulated": s.simulated,
                           "verify": s.verify.shown if s.verify else None} for d, s in steps], ensure_ascii=False, indent=2))
        return 0
    print(f"dry run on {asset}: nothing is executed")
    for depth, step in steps:
        pad = "  " * (depth + 1)
        flags = "mutating, " if step.mutating else ""
        print(f"{pad}{step.position + 1}. {step.name} ({flags}timeout {step.timeout:g}s, on failure {step.on_failure})")
        print(f"{pad}   {step.shown}")
        if step.verify is not None:
            print(f"{pad}   verify: {step.verify.shown}")
        if step.simulated:
            print(f"{pad}   ({step.simulated})")
    return 0


def _follow(args: argparse.Namespace, run_id: int, *, timeout: float) -> int:
    from collector.store import runbooks as r

    shown: set[int] = set()
    deadline = time.monotonic() + timeout
    hinted = False
    started = time.monotonic()
    while time.monotonic() < deadline:
        run, steps = _query(args, lambda c: (r.get_run(c, run_id), r.steps(c, run_id)))
        for step in steps:
            if step.id not in shown:
                shown.add(step.id)
                print(f"  {step.name}: {step.status}" + (f" ({step.detail})" if step.detail else ""))
        if run.state in r.FINAL or run.state == "waiting_approval":
            print(f"run {run_id}: {run.state}: {run.result or ''}".rstrip(": "))
            return 0 if run.state in ("succeeded", "waiting_approval") else 1
        if not hinted and run.state == "queued" and time.monotonic() - started > 15:
            print(f"  still queued: {run.result or 'is the collector running?'}")
            hinted = True
        time.sleep(0.5)
    print(f"run {run_id}: still {run.state}; follow it with: schoolops runbooks record {run_id}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from collector.store import runbooks as r

    states = tuple(args.state.split(",")) if args.state else None
    runs = _query(args, lambda c: r.list_runs(c, incident_id=args.incident, asset=args.asset, states=states))
    rows = [{"id": x.id, "runbook": x.runbook, "asset": x.asset, "incident": x.incident_id, "state": x.state,
             "started_by": x.started_by, "requested": when(x.requested_at), "result": x.result} for x in runs]
    _print(args, rows, ["id", "runbook", "asset", "incident", "state", "started_by", "requested", "result"])
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from collector.store import runbooks as r

    run, steps, approvals = _query(args, lambda c: (r.get_run(c, args.id), r.steps(c, args.id),
                                                    r.approvals(c, run_id=args.id)))
    if run is None:
        raise UsageError(f"no run {args.id}")
    if args.json:
        print(json.dumps({**run.as_dict(), "steps": [s.as_dict() for s in steps],
                          "approvals": [a.as_dict() for a in approvals]}, ensure_ascii=False, indent=2))
        return 0
    print(f"run {run.id}: {run.runbook} on {run.asset}, {run.state}"
          + (f", incident {run.incident_id}" if run.incident_id else "")
          + f"\n  started by {run.started_by}{' (automatic)' if run.automatic else ''} at {when(run.requested_at)}"
          + (f"\n  result: {run.result}" if run.result else ""))
    for s in steps:
        print(f"  - {s.name} [{s.action}] {s.status} in {s.duration:.1f}s" + (f", exit {s.exit_status}" if s.exit_status is not None else ""))
        print(f"    {s.command}")
        if s.detail:
            print(f"    {s.detail}")
        for line in s.output.splitlines()[-20:]:
            print(f"    | {line}")
    for a in approvals:
        print(f"  approval {a.id}: {a.role} for step {a.step}: {a.decision or 'pending'}"
              + (f" by {a.decided_by}" if a.decided_by else f" (expires {when(a.expires_at)})"))
    return 0


def _decide(approve: bool) -> Callable[[argparse.Namespace], int]:
    def cmd(args: argparse.Namespace) -> int:
        from collector.notify.oncall import load_oncall
        from collector.runbooks.notices import RunbookNotices
        from collector.runbooks.runner import Runner

        settings = _settings(args)
        if not settings.oncall_file:
            raise UsageError("approvals need the on-call file (oncall_file in the collector config): it says who holds which role")
        oncall = load_oncall(settings.oncall_file)
        person = actor_name(args)
        found = next((p for p in oncall.people if p.id == person), None)
        if found is None:
            raise UsageError(f"{person!r} is not a person in {settings.oncall_file}: use --as with a person id")
        decider = Runner(None, {}, None, RunbookNotices(None, None))  # type: ignore[arg-type]
        roles = [role.value for role in found.roles]
        decision, refusal = _query(args, lambda c: decider.decide(c, args.id, person, roles, approve, args.note))
        if decision is None:
            raise UsageError(refusal)
        print(f"run {args.id}: {decision} by {person}" + ("; the collector resumes it" if approve else ""))
        return 0
    return cmd


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    rb = sub.add_parser("runbooks", help="runbooks: remediation and emergency plans").add_subparsers(
        dest="runbooks_command", required=True, metavar="ACTION")
    p = command("list", cmd_list, "list the loaded runbooks", rb)
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("check", cmd_check, "validate every runbook file (and approvers against the on-call file)", rb)
    p.add_argument("folder", nargs="?", help="a runbooks folder (default: the configured one)")
    store_options(p)
    p = command("show", cmd_show, "a runbook's steps", rb)
    p.add_argument("name")
    store_options(p)
    p = command("run", cmd_run, "start a runbook on an asset or an incident (the collector executes it)", rb)
    p.add_argument("name")
    p.add_argument("--asset")
    p.add_argument("--incident", type=int)
    p.add_argument("--var", action="append", metavar="NAME=VALUE", help="set one of the runbook's variables")
    p.add_argument("--dry-run", action="store_true", help="print what would run; execute nothing")
    p.add_argument("--no-wait", action="store_true", help="queue it and return")
    p.add_argument("--json", action="store_true")
    p.add_argument("--as", dest="actor", help="who starts it (default: $SCHOOLOPS_USER, else your login name)")
    store_options(p)
    p = command("runs", cmd_runs, "list runs, newest first", rb)
    p.add_argument("--incident", type=int)
    p.add_argument("--asset")
    p.add_argument("--state", help="comma-separated, e.g. waiting_approval,running")
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("record", cmd_record, "one run's record: steps, commands, outputs, approvals", rb)
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    store_options(p)
    for name, approve in (("approve", True), ("deny", False)):
        p = command(name, _decide(approve), f"{name} a run waiting for approval", rb)
        p.add_argument("id", type=int)
        p.add_argument("--as", dest="actor", help="your person id in the on-call file")
        p.add_argument("--note")
        store_options(p)
