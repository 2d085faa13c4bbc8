"""``schoolops upgrade check|run|approve|deny|rollback|show|list``.

``check PLAN`` validates the plan file and has the collector run its pre-checks only. ``run PLAN``
asks for the approval the plan names (``--dry-run`` prints every step per phase, batch and asset,
and touches nothing); once someone else with that role approves (``approve ID --as NAME``), the
collector runs it in its window. ``rollback ID`` runs an upgrade's rollback by hand. PLAN is a file,
or the name of one in ``runbooks/upgrades/``. ``--wait`` follows a request until it ends.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from collector.cli import UsageError, _print, _query, _settings, store_options
from collector.cli_incidents import actor as actor_name
from collector.cli_incidents import when

FOLLOW_LIMIT = 6 * 3600.0


def _plan(args: argparse.Namespace) -> Any:
    from collector.notify.oncall import load_oncall
    from collector.upgrades.loader import check_plan_approver, find_plan, load_plan

    settings = _settings(args)
    plan = load_plan(find_plan(settings.runbooks_path, args.plan))
    if settings.oncall_file:
        oncall = load_oncall(settings.oncall_file)
        check_plan_approver(plan, {role.value for p in oncall.people for role in p.roles}, str(settings.oncall_file))
    return plan


def _entries(args: argparse.Namespace) -> dict[str, Any]:
    from collector.inventory import load_entries

    settings = _settings(args)
    return {e.name: e for e in load_entries(settings.inventory_file)} if settings.inventory_file else {}


def _person(args: argparse.Namespace, permission: str) -> tuple[str, list[str]]:
    """Who acts, and their roles; refused unless the on-call file gives them ``permission``."""
    from collector.auth.roles import Permission, allowed
    from collector.notify.oncall import load_oncall

    person = actor_name(args)
    settings = _settings(args)
    if not settings.oncall_file:
        raise UsageError("upgrades need the on-call file (oncall_file in the collector config): it says who may ask "
                         "for them and who approves")
    oncall = load_oncall(settings.oncall_file)
    found = next((p for p in oncall.people if p.id == person), None)
    if found is None:
        raise UsageError(f"{person!r} is not a person in {settings.oncall_file}: use --as with a person id")
    roles = [role.value for role in found.roles]
    if not allowed(roles, Permission(permission)):
        raise UsageError(f"{person} ({', '.join(roles)}) may not do this: it needs the {permission} permission")
    return person, roles


def cmd_check(args: argparse.Namespace) -> int:
    from collector.upgrades import requests

    plan = _plan(args)
    print(f"{plan.source}: plan {plan.name} is valid ({len(plan.execute.steps)} execute steps, "
          f"{len(plan.rollback.steps)} rollback steps, approval by {plan.approval.role})")
    if args.validate_only:
        return 0
    person, _ = _person(args, "runbook.run")
    entries = _entries(args)
    try:
        upgrade_id = _query(args, lambda c: requests.request(c, plan, mode="check", actor=person, now=time.time(),
                                                             entries=entries))
    except requests.RequestRefused as exc:
        raise UsageError(str(exc)) from None
    print(f"upgrade {upgrade_id}: pre-checks of {plan.name} queued; the collector runs them")
    return _follow(args, upgrade_id)


def cmd_run(args: argparse.Namespace) -> int:
    from collector.upgrades import requests

    plan = _plan(args)
    entries = _entries(args)
    if args.dry_run:
        try:
            targets, steps = _query(args, lambda c: requests.dry_run(c, plan, entries))
        except requests.RequestRefused as exc:
            raise UsageError(str(exc)) from None
        return _print_dry_run(args, plan, targets, steps)
    person, _ = _person(args, "runbook.run")
    try:
        upgrade_id = _query(args, lambda c: requests.request(c, plan, mode="run", actor=person, now=time.time(),
                                                             entries=entries))
    except requests.RequestRefused as exc:
        raise UsageError(str(exc)) from None
    print(f"upgrade {upgrade_id}: {plan.name} waits for approval by someone with the {plan.approval.role} role "
          f"(not {person}): schoolops upgrade approve {upgrade_id} --as NAME")
    return _follow(args, upgrade_id) if args.wait else 0


def _print_dry_run(args: argparse.Namespace, plan: Any, targets: list[str], steps: list[Any]) -> int:
    if args.json:
        print(json.dumps({"plan": plan.name, "assets": targets, "steps": [
            {"phase": s.phase, "batch": s.batch, "asset": s.asset, "step": s.step.name, "action": s.step.action,
             "command": s.step.shown, "verify": s.step.verify.shown if s.step.verify else None,
             "on_failure": s.step.on_failure, "timeout": s.step.timeout} for s in steps]}, ensure_ascii=False, indent=2))
        return 0
    print(f"dry run of {plan.name} on {', '.join(targets)}: nothing is executed")
    print(f"  why: {plan.reason.source.value} {plan.reason.reference}; approval by {plan.approval.role}; "
          f"window {plan.window.start or 'from approval'} for {plan.window.duration:g}s; "
          f"{plan.serial} at a time, stop after {plan.max_failed_batches} failed batch(es)")
    checks = [("pre_checks", plan.pre_checks), ("post_checks", plan.post_checks)]
    for phase, spec in checks:
        extra = (["patrol items that apply"] if spec.patrol else []) + [f"free disk {d.path} >= {d.min}" for d in spec.free_disk]
        extra += [f"compare {t.metric}[{t.key}]" for t in (plan.post_checks.compare if phase == "post_checks" else ())]
        if extra:
            print(f"  {phase}: {', '.join(extra)}")
    shown: tuple[str, int | None] | None = None
    for s in steps:
        if (s.phase, s.batch) != shown:
            shown = (s.phase, s.batch)
            print(f"  {s.phase}" + (f" (batch {s.batch})" if s.batch is not None else "") + ":")
        print(f"    {s.asset}: {s.step.name}: {s.step.shown}")
        if s.step.verify is not None:
            print(f"      verify: {s.step.verify.shown}")
    return 0


def _decide(approve: bool) -> Callable[[argparse.Namespace], int]:
    def cmd(args: argparse.Namespace) -> int:
        from collector.upgrades import requests

        person, roles = _person(args, "read")
        decision, refusal = _query(args, lambda c: requests.decide(c, args.id, person=person, roles=roles,
                                                                   approve=approve, note=args.note, now=time.time()))
        if decision is None:
            raise UsageError(refusal)
        print(f"upgrade {args.id}: {decision} by {person}")
        return _follow(args, args.id) if approve and args.wait else 0

    return cmd


def cmd_rollback(args: argparse.Namespace) -> int:
    from collector.upgrades import requests

    person, _ = _person(args, "runbook.run")
    try:
        rollback_id = _query(args, lambda c: requests.request_rollback(c, args.id, actor=person, now=time.time()))
    except requests.RequestRefused as exc:
        raise UsageError(str(exc)) from None
    print(f"upgrade {rollback_id}: rollback of upgrade {args.id} queued; the collector runs it")
    return _follow(args, rollback_id) if args.wait else 0


def _follow(args: argparse.Namespace, upgrade_id: int) -> int:
    from collector.store import upgrades as u

    shown: set[int] = set()
    deadline = time.monotonic() + float(getattr(args, "timeout", None) or FOLLOW_LIMIT)
    started = time.monotonic()
    hinted = False
    while time.monotonic() < deadline:
        record, steps = _query(args, lambda c: (u.get(c, upgrade_id), u.steps(c, upgrade_id)))
        for step in steps:
            if step.id not in shown:
                shown.add(step.id)
                batch = f" batch {step.batch}" if step.batch is not None else ""
                print(f"  [{step.phase}{batch}] {step.asset}: {step.name}: {step.status}"
                      + (f" ({step.detail})" if step.detail else ""))
        if record.state in u.FINAL:
            print(f"upgrade {upgrade_id}: {record.state}: {record.result or ''}".rstrip(": "))
            return 0 if record.state in ("checked", "succeeded") else 1
        if not hinted and record.state in u.STARTABLE and time.monotonic() - started > 15:
            print("  not started yet: " + ("its window begins at " + str(when(record.not_before))
                                           if record.not_before else "is the collector running?"))
            hinted = True
        time.sleep(0.5)
    print(f"upgrade {upgrade_id}: still {record.state}; follow it with: schoolops upgrade show {upgrade_id}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from collector.store import upgrades as u
    from collector.upgrades import report

    record, steps = _query(args, lambda c: (u.get(c, args.id), u.steps(c, args.id)))
    if record is None:
        raise UsageError(f"no upgrade request {args.id}")
    if args.json:
        print(json.dumps({**record.as_dict(), "steps": [s.as_dict() for s in steps]}, ensure_ascii=False, indent=2))
        return 0
    out = record.outcome
    print(report.render(record, steps, args.lang, description=out.get("description", ""), reason=out.get("reason", ""),
                        reason_source=out.get("reason_source", ""), outputs=True))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from collector.store import upgrades as u

    records = _query(args, lambda c: u.list_upgrades(c))
    rows = [{"id": r.id, "plan": r.plan, "mode": r.mode, "state": r.state, "requested_by": r.requested_by,
             "requested": when(r.requested_at), "decided_by": r.decided_by, "result": r.result} for r in records]
    _print(args, rows, ["id", "plan", "mode", "state", "requested_by", "requested", "decided_by", "result"])
    return 0


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    up = sub.add_parser("upgrade", help="system upgrades: plan, pre-check, back up, run, verify, roll back").add_subparsers(
        dest="upgrade_command", required=True, metavar="ACTION")
    p = command("check", cmd_check, "validate a plan and run its pre-checks only", up)
    p.add_argument("plan", help="a plan file, or a plan's name in runbooks/upgrades/")
    p.add_argument("--validate-only", action="store_true", help="only validate the file; run no check")
    p.add_argument("--as", dest="actor", help="who asks (default: $SCHOOLOPS_USER, else your login name)")
    store_options(p)
    p = command("run", cmd_run, "ask for an upgrade (it runs once approved, in its window)", up)
    p.add_argument("plan", help="a plan file, or a plan's name in runbooks/upgrades/")
    p.add_argument("--dry-run", action="store_true", help="print every step that would run; execute nothing")
    p.add_argument("--wait", action="store_true", help="follow it until it ends")
    p.add_argument("--json", action="store_true")
    p.add_argument("--as", dest="actor", help="who asks (default: $SCHOOLOPS_USER, else your login name)")
    store_options(p)
    for name, approve in (("approve", True), ("deny", False)):
        p = command(name, _decide(approve), f"{name} an upgrade waiting for approval", up)
        p.add_argument("id", type=int)
        p.add_argument("--as", dest="actor", help="your person id in the on-call file")
        p.add_argument("--note")
        p.add_argument("--wait", action="store_true", help="follow it until it ends")
        store_options(p)
    p = command("rollback", cmd_rollback, "roll back by hand what an upgrade left upgraded", up)
    p.add_argument("id", type=int)
    p.add_argument("--as", dest="actor", help="who asks")
    p.add_argument("--wait", action="store_true", help="follow it until it ends")
    store_options(p)
    p = command("show", cmd_show, "an upgrade's report: phases, steps, outputs, before and after", up)
    p.add_argument("id", type=int)
    p.add_argument("--lang", default="en", choices=["en", "zh-CN", "zh-TW"])
    p.add_argument("--json", action="store_true")
    store_options(p)
    p = command("list", cmd_list, "upgrade requests, newest first", up)
    p.add_argument("--json", action="store_true")
    store_options(p)
