"""Read an upgrade plan file into a :class:`~collector.upgrades.model.Plan`; every problem named.

A bad plan raises :class:`~schoolops.ConfigError` naming the file, the line, the phase and step
(``execute.steps[1] (name swap)``) and the key, like runbook files: an unknown action, a check that
would change something, an unknown selector key, a template naming an unknown variable, a bad window.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from collector.runbooks.loader import Where, build_step
from collector.runbooks.model import (
    TEMPLATE_ROOTS,
    Runbook,
    Step,
    check_template,
    placeholders,
)
from collector.upgrades.model import (
    BACKUP_VARIABLE,
    PHASE_ACTIONS,
    Backup,
    Checks,
    Plan,
    PlanFile,
    RawChecks,
)
from schoolops import ConfigError, conf

VERIFY_STEPS = ("backup-file-stat", "backup-file-clock", "backup-restore-test")
"""The steps ``backup.verify`` adds after the plan's backup steps (reserved names)."""


def plans_folder(runbooks_path: Path) -> Path:
    return runbooks_path / "upgrades"


def find_plan(runbooks_path: Path, name_or_path: str) -> Path:
    """A plan by file path, or by name in ``runbooks/upgrades/`` (``NAME.yaml``); ConfigError if none."""
    given = Path(name_or_path)
    if given.suffix in (".yaml", ".yml") and given.is_file():
        return given
    folder = plans_folder(runbooks_path)
    for suffix in (".yaml", ".yml"):
        if (folder / f"{name_or_path}{suffix}").is_file():
            return folder / f"{name_or_path}{suffix}"
    known = sorted(p.stem for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    raise ConfigError(f"no upgrade plan {name_or_path!r}: give a file, or a name in {folder} "
                      f"({', '.join(known) if known else 'none there'})")


def load_plan(path: Path) -> Plan:
    return load_plan_text(conf.read_config_text(path), str(path))


def load_plan_text(text: str, source: str) -> Plan:
    parsed = conf.load_text(text, PlanFile, source=source)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    path = Path(source)
    top = Where(path, "", "", root)
    if parsed.window.start is not None:
        try:
            start = datetime.fromisoformat(parsed.window.start)
        except ValueError:
            raise top.error("window.start", f"{parsed.window.start!r} is not a date and time such as "
                                            "2026-11-28T18:00:00+08:00") from None
        if start.tzinfo is None:
            raise top.error("window.start", "give the offset from UTC too, e.g. 2026-11-28T18:00:00+08:00")
    if parsed.assets == type(parsed.assets)():
        raise top.error("assets", "name the assets to upgrade (names, role, site, kind, tier or labels): an empty "
                                  "selector would upgrade every asset")
    if parsed.backup.steps and parsed.backup.verify is None:
        raise top.error("backup.verify", "say which file the backup steps make (path, min_size, max_age), so that "
                                         "the backup is checked before anything changes")
    variables = dict(parsed.variables)
    names = _check_variables(variables, top)
    if parsed.backup.verify is not None:
        problem = check_template(parsed.backup.verify.path, names)
        if problem:
            raise top.error("backup.verify.path", problem)
        if BACKUP_VARIABLE in variables:
            raise top.error(f"variables.{BACKUP_VARIABLE}", "is set from backup.verify.path: choose another name")
        variables[BACKUP_VARIABLE] = parsed.backup.verify.path
        names = (*names, BACKUP_VARIABLE)
    if parsed.pre_checks.compare is not None:
        raise top.error("pre_checks.compare", "compare belongs in post_checks: the values before are taken during "
                                              "the pre-checks by themselves")
    def phase(name: str, raw_steps: list[dict[str, Any]], extra: list[Step] | None = None) -> Runbook:
        seen: dict[str, str] = {}  # step names are unique within a phase
        steps = [_step(raw, index, name, root, path, names, seen) for index, raw in enumerate(raw_steps)]
        return Runbook(name=f"{parsed.name}.{name}", description=f"{parsed.description}: {name}",
                       steps=(*steps, *(extra or [])), variables=variables, source=source, manual=True,
                       timeout=parsed.window.duration)

    def checks(name: str, raw: RawChecks) -> Checks:
        return Checks(patrol=raw.patrol, free_disk=raw.free_disk, steps=phase(name, raw.steps), wait=raw.wait,
                      compare=raw.compare.metrics if raw.compare else ())

    verify_steps: list[Step] = []
    restore_steps: list[Step] = []
    if parsed.backup.verify is not None:
        verify = parsed.backup.verify
        where = Where(path, "backup.verify", "", conf.node_at(root, "backup.verify"))
        for raw in ({"name": VERIFY_STEPS[0], "action": "ssh",
                     "params": {"argv": ["stat", "--format", "%s %Y", "--", "{{ " + BACKUP_VARIABLE + " }}"]}},
                    {"name": VERIFY_STEPS[1], "action": "ssh", "params": {"argv": ["date", "+%s"]}}):
            verify_steps.append(build_step(raw, where, names))
        if verify.restore_test is not None:
            restore_steps.append(build_step({"name": VERIFY_STEPS[2], "action": "ssh", "timeout": "10m",
                                             "params": {"argv": list(verify.restore_test)}}, where, names))
    plan = Plan(
        name=parsed.name, description=parsed.description, reason=parsed.reason, assets=parsed.assets,
        approval=parsed.approval, window=parsed.window, serial=parsed.serial,
        max_failed_batches=parsed.max_failed_batches, variables=variables,
        pre_checks=checks("pre_checks", parsed.pre_checks),
        backup=Backup(steps=phase("backup", parsed.backup.steps, verify_steps), verify=parsed.backup.verify,
                      config=parsed.backup.config, restore_test=phase("backup", [], restore_steps)),
        execute=phase("execute", parsed.execute.steps),
        post_checks=checks("post_checks", parsed.post_checks),
        rollback=phase("rollback", parsed.rollback.steps),
        source=source, text=text,
    )
    if not plan.backup.steps.steps and not plan.backup.config:
        raise top.error("backup", "an upgrade backs up first: give steps with a verify (servers) or config: true "
                                  "(network devices)")
    return plan


def _check_variables(variables: dict[str, str], top: Where) -> tuple[str, ...]:
    names: list[str] = []
    for name, value in variables.items():
        if name in TEMPLATE_ROOTS:
            raise top.error(f"variables.{name}", f"{name!r} is a template root: choose another name")
        problem = check_template(value, names)
        if problem is None and any(p.split(".")[0] == "secret" for p in placeholders(value)):
            problem = "a variable cannot hold a secret (it is shown in dry runs): use {{ secret.NAME }} in the step"
        if problem:
            raise top.error(f"variables.{name}", problem)
        names.append(name)
    return tuple(names)


def _step(raw: dict[str, Any], index: int, phase: str, root: yaml.Node | None, path: Path, names: tuple[str, ...],
          seen: dict[str, str]) -> Step:
    item = f"{phase}.steps[{index}]"
    label = f"name {raw['name']}" if isinstance(raw, dict) and isinstance(raw.get("name"), str) else ""
    where = Where(path, item, label, conf.node_at(root, item))
    if not isinstance(raw, dict):
        raise where.error("(entry)", "a step is a mapping with name, action and params")
    allowed = PHASE_ACTIONS[phase]
    action = raw.get("action")
    if isinstance(action, str) and action in ("approve", "runbook"):
        raise where.error("action", f"{action!r} steps are not for upgrade plans: the plan's approval is asked "
                                    f"once, before anything runs; use {', '.join(allowed)}")
    if isinstance(action, str) and action not in allowed and action in PHASE_ACTIONS["execute"]:
        raise where.error("action", f"{phase} only look: {action!r} is not one of {', '.join(allowed)}")
    step = build_step(raw, where, names)
    if step.name in VERIFY_STEPS:
        raise where.error("name", f"{step.name!r} is the name of a step backup.verify adds: choose another")
    if step.name in seen:
        raise where.error("name", f"step name {step.name!r} repeated: already {seen[step.name]}")
    seen[step.name] = item
    return step


def check_plan_approver(plan: Plan, roles_held: set[str], oncall_source: str) -> None:
    if plan.approval.role not in roles_held:
        raise ConfigError(f"{plan.source}: approval.role: nobody in {oncall_source} has the role "
                          f"{plan.approval.role!r}, so nobody could approve this plan")
