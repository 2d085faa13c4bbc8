"""When a runbook may start, and who may approve it: pure functions of data and ``now``.

- :func:`matches` — does an incident's fault match a runbook's ``when``?
- :func:`automation_problem` — may an incident start this runbook with nobody asked? Steps that
  change things need an ``approve`` step before them, unless the runbook is marked safe for
  automation (called runbooks count as the steps they run).
- :func:`budget_left` — the attempt budget per (asset, runbook): at most ``limit`` automatic runs
  in any ``window`` seconds.
- :func:`approval_refusal` — why a person may not decide an approval request, or None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.domain import FaultType, Severity
from collector.runbooks.model import Runbook, RunbookParams, When


@dataclass(frozen=True)
class TriggerFacts:
    """An active fault of a live incident, with the asset's labels (site, role, tier, kind and extras)."""

    severity: Severity
    type: FaultType
    rule: str
    labels: Mapping[str, str]


def matches(when: When, facts: TriggerFacts) -> bool:
    """Every key given in ``when`` matches; a list is any of its values; labels must all be equal."""
    severities = when.severities
    if severities is not None and facts.severity not in severities:
        return False
    if when.type is not None and facts.type not in when.type:
        return False
    if when.rule is not None and facts.rule not in when.rule:
        return False
    return all(facts.labels.get(key) == value for key, value in (when.labels or {}).items())


def automation_problem(runbook: Runbook, runbooks: Mapping[str, Runbook]) -> str | None:
    """Why an incident may not start ``runbook`` by itself, or None when it may."""
    if runbook.safe_for_automation:
        return None
    for step_name, called_from in _steps_in_order(runbook, runbooks):
        if step_name == "approve":
            return None
        if step_name is not None:
            where = f"step {step_name!r}" + (f" of runbook {called_from!r}" if called_from != runbook.name else "")
            return (f"{where} changes things and no approve step comes before it: add an approve step "
                    f"or mark runbook {runbook.name!r} safe_for_automation")
    return None


def _steps_in_order(runbook: Runbook, runbooks: Mapping[str, Runbook], depth: int = 0) -> Iterable[tuple[str | None, str]]:
    """("approve", name) for an approve step, (step name, runbook) for a mutating one, in run order."""
    if depth > 16:  # the loader refuses call cycles; this only bounds a corrupted set
        return
    for step in runbook.steps:
        if step.action == "approve":
            yield "approve", runbook.name
        elif isinstance(step.params, RunbookParams) and step.params.name in runbooks:
            called = runbooks[step.params.name]
            if not called.safe_for_automation:
                yield from _steps_in_order(called, runbooks, depth + 1)
        elif step.mutating:
            yield step.name, runbook.name


def budget_left(started: Sequence[float], now: float, *, limit: int, window: float) -> int:
    """How many more automatic runs may start now, given when the earlier ones started."""
    recent = [t for t in started if now - window < t <= now]
    return max(0, limit - len(recent))


@dataclass(frozen=True)
class ApprovalRequest:
    run_id: int
    role: str
    requested_by: str  # who started the run ("schoolops" for an automatic run)
    expires_at: float
    decision: str | None = None


def approval_refusal(request: ApprovalRequest, person: str, roles: Iterable[str], now: float) -> str | None:
    """Why ``person`` (holding ``roles``) may not approve or deny ``request`` now; None if they may."""
    if request.decision is not None:
        return f"run {request.run_id}: the request was already {request.decision}"
    if now >= request.expires_at:
        return f"run {request.run_id}: the request expired; start the runbook again"
    if person == request.requested_by:
        return f"run {request.run_id}: {person} started this run and cannot approve their own request"
    if request.role not in set(roles):
        return f"run {request.run_id}: only someone with the {request.role} role may decide; {person} does not have it"
    return None
