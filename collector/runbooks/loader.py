"""Load every runbook file under a folder into ``{name: Runbook}``; all or nothing.

Every ``*.yaml``/``*.yml`` file under the folder (subfolders too: emergency plans live in
``runbooks/emergency/``; not ``patrol/`` and ``upgrades/``, which hold checklists and upgrade
plans) is read in path order. A bad file raises
:class:`~schoolops.ConfigError` naming the file, the line, the step (``steps[2] (name restart)``)
and the key; nothing is kept from a failed load. Runbook names are unique across files, and a
``runbook`` step must name a runbook that exists in the folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector.runbooks.model import (
    CHECK_ACTIONS,
    STEP_ACTIONS,
    TEMPLATE_ROOTS,
    Check,
    Params,
    RawCheck,
    RawStep,
    Runbook,
    RunbookFile,
    RunbookParams,
    Step,
    WaitUntilParams,
    check_template,
    placeholders,
)
from schoolops import ConfigError, conf


NOT_RUNBOOKS = frozenset({"patrol", "upgrades"})
"""Subfolders of ``runbooks/`` holding other kinds of file: patrol checklists, upgrade plans."""


def load_runbooks(directory: Path) -> dict[str, Runbook]:
    """Read every runbook file under ``directory``; raise ConfigError on the first problem."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a folder of runbook files")
    paths = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                   and not set(p.relative_to(directory).parts[:-1]) & NOT_RUNBOOKS)
    runbooks: dict[str, Runbook] = {}
    calls: list[tuple[_Where, str]] = []  # (the calling step, the runbook it names)
    for path in paths:
        runbook, file_calls, top = _load_file(path)
        if runbook.name in runbooks:
            raise top.error("name", f"duplicate runbook name {runbook.name!r}: already defined in {runbooks[runbook.name].source}")
        runbooks[runbook.name] = runbook
        calls.extend(file_calls)
    for where, name in calls:
        if name not in runbooks:
            raise where.error("params.name", f"no runbook named {name!r}; known: {', '.join(sorted(runbooks))}")
        called = runbooks[name]
        waiting = next((s.name for s in called.steps if s.action == "approve"), None)
        if waiting is not None:
            raise where.error("params.name", f"runbook {name!r} asks for approval (step {waiting!r}) and cannot be "
                                             "called from another runbook: put the approve step in the caller")
    _refuse_call_cycles(runbooks, calls)
    return runbooks


def _refuse_call_cycles(runbooks: dict[str, Runbook], calls: list[tuple[_Where, str]]) -> None:
    """A runbook that (through others) calls itself would never end."""
    graph = {name: [s.params.name for s in rb.steps if isinstance(s.params, RunbookParams)] for name, rb in runbooks.items()}

    def path_back(start: str) -> list[str] | None:
        stack: list[tuple[str, list[str]]] = [(callee, [start, callee]) for callee in graph[start]]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            if node == start:
                return path
            if node in seen:
                continue
            seen.add(node)
            stack.extend((callee, [*path, callee]) for callee in graph[node])
        return None

    for where, name in calls:
        caller = next(rb.name for rb in runbooks.values() if rb.source == str(where.path))
        cycle = path_back(caller)
        if cycle is not None:
            raise where.error("params.name", f"runbook calls loop back to themselves: {' -> '.join(cycle)}")


def _load_file(path: Path) -> tuple[Runbook, list[tuple[_Where, str]], _Where]:
    text = conf.read_config_text(path)
    parsed = conf.load_text(text, RunbookFile, source=str(path))
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    top = _Where(path, "", "", root)
    if parsed.when is not None and parsed.manual:
        raise top.error("manual", "give either when (started by matching incidents) or manual: true, not both")
    names: list[str] = []
    for name, value in parsed.variables.items():
        if name in TEMPLATE_ROOTS:
            raise top.error(f"variables.{name}", f"{name!r} is a template root: choose another name")
        problem = check_template(value, names)  # a variable may use the ones defined before it
        if problem is None and any(p.split(".")[0] == "secret" for p in placeholders(value)):
            problem = "a variable cannot hold a secret (it is shown in dry runs): use {{ secret.NAME }} in the step"
        if problem:
            raise top.error(f"variables.{name}", problem)
        names.append(name)
    steps: list[Step] = []
    calls: list[tuple[_Where, str]] = []
    seen: dict[str, str] = {}  # step name → where it is first defined
    step_nodes = _child(root, "steps")
    for index, raw in enumerate(parsed.steps):
        node = step_nodes.value[index] if isinstance(step_nodes, yaml.SequenceNode) else None
        label = f"name {raw['name']}" if isinstance(raw.get("name"), str) and raw["name"] else ""
        where = _Where(path, f"steps[{index}]", label, node)
        step = _build_step(raw, where, tuple(names))
        if step.name in seen:
            raise where.error("name", f"step name {step.name!r} repeated: already {seen[step.name]}")
        seen[step.name] = where.item
        if isinstance(step.params, RunbookParams):
            calls.append((where, step.params.name))
        steps.append(step)
    runbook = Runbook(
        name=parsed.name,
        description=parsed.description,
        steps=tuple(steps),
        when=parsed.when,
        manual=parsed.manual,
        safe_for_automation=parsed.safe_for_automation,
        timeout=parsed.timeout,
        variables=dict(parsed.variables),
        source=str(path),
    )
    return runbook, calls, top


def _build_step(raw: dict[str, Any], where: _Where, names: tuple[str, ...]) -> Step:
    spec: RawStep = where.convert(raw, RawStep)
    params = _params(spec.action, spec.params, where, "", STEP_ACTIONS)
    verify: Check | None = None
    if spec.verify is not None:
        check: RawCheck = where.convert(spec.verify, RawCheck, prefix="verify.")
        allowed = {action: STEP_ACTIONS[action] for action in CHECK_ACTIONS}
        verify = Check(action=check.action, params=_params(check.action, check.params, where, "verify.", allowed), timeout=check.timeout)
        _check_templates(check.params, where, "verify.params", names)
        _check_wait(verify.params, verify.timeout, where, "verify.")
    _check_templates(spec.params, where, "params", names)
    _check_wait(params, spec.timeout, where, "")
    return Step(
        name=spec.name,
        action=spec.action,
        params=params,
        timeout=spec.timeout,
        on_failure=spec.on_failure,
        mutating=spec.mutating,
        verify=verify,
    )


def _params(action: str, raw: dict[str, Any], where: _Where, prefix: str, allowed: dict[str, type[Params]]) -> Params:
    if action not in allowed:
        what = "step action" if not prefix else "verify action"
        raise where.error(f"{prefix}action", f"unknown {what} {action!r}: use one of {', '.join(allowed)}")
    result: Params = where.convert(raw, allowed[action], prefix=f"{prefix}params.")
    return result


def _check_wait(params: Params, timeout: float, where: _Where, prefix: str) -> None:
    if isinstance(params, WaitUntilParams) and params.timeout > timeout:
        raise where.error(
            f"{prefix}timeout",
            f"{timeout:g}s is shorter than the wait ({params.timeout:g}s): the step would be killed first",
        )


def _check_templates(raw: dict[str, Any], where: _Where, prefix: str, names: tuple[str, ...]) -> None:
    for key, text in _strings(raw, prefix):
        problem = check_template(text, names)
        if problem:
            raise where.error(key, problem)


def _strings(value: object, key: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its dotted key (``params.argv[2]``)."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _strings(item, f"{key}.{name}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _strings(item, f"{key}[{index}]")


@dataclass(frozen=True)
class _Where:
    """A place in a runbook file, for errors: ``FILE:LINE: steps[2] (name restart): key: reason``."""

    path: Path
    item: str  # "steps[2]", or "" for the runbook's own keys
    label: str
    node: yaml.Node | None = field(default=None, compare=False)

    def error(self, key: str, reason: str, *, line: int | None = None) -> ConfigError:
        line = line if line is not None else conf.line_of(self.node, key)
        head = f"{self.path}:{line}" if line else str(self.path)
        entry = f"{self.item} ({self.label})" if self.label else self.item
        return ConfigError(f"{head}: {entry + ': ' if entry else ''}{key}: {reason}")

    def convert(self, raw: dict[str, Any], type_: type[Any], *, prefix: str = "") -> Any:
        """Validate ``raw`` (found at ``prefix`` in this entry) as ``type_``; re-word the error."""
        node = conf.node_at(self.node, prefix.rstrip(".")) if prefix else self.node
        try:
            return conf.convert(raw, type_, source="", node=node)
        except conf.FieldError as exc:
            key = exc.key if exc.key != "(top level)" else ""
            raise self.error(f"{prefix}{key}".rstrip(".") or "(entry)", exc.reason, line=exc.line) from None




def _child(node: yaml.Node | None, name: str) -> yaml.Node | None:
    return conf.node_at(node, name)


def check_approvers(runbooks: dict[str, Runbook], roles_held: set[str], oncall_source: str) -> None:
    """Every ``approve`` step must name a role somebody in the on-call file holds."""
    for runbook in runbooks.values():
        for index, step in enumerate(runbook.steps):
            role = getattr(step.params, "role", None)
            if step.action == "approve" and role not in roles_held:
                raise ConfigError(f"{runbook.source}: steps[{index}] (name {step.name}): params.role: nobody in "
                                  f"{oncall_source} has the role {role!r}, so nobody could approve this step")


# what other plan files built of runbook steps (upgrade plans) validate their steps with
Where = _Where
build_step = _build_step
