"""Resolve a runbook's templates for one run: pure, the same for a dry run and a real one.

A run sees a :class:`Scope`: the incident, the fault and the asset as plain text fields, the extra
variables given when it was started, and the names of stored secrets. :func:`plan` renders every
step of a runbook into a :class:`PlannedStep` twice over: ``shown`` (what people read: dry runs,
run records; secrets masked) and ``params`` (what executes). Nothing is fetched here: a secret is
looked up through the ``reveal`` callable the caller passes, and only a real run passes one.

Every placeholder is filled with text and then placed where it can do no harm: each ``argv``
item stays one argument (the SSH transport quotes each), a value in a network CLI command or a
URL may not carry line breaks, an OID part must be digits. A placeholder with no value (a manual
run without an incident using ``{{ incident.id }}``) is a :class:`RenderError` naming it.
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from collector import CollectorError
from collector.runbooks.model import (
    ApproveParams,
    Check,
    CliParams,
    HttpParams,
    NotifyParams,
    Params,
    Runbook,
    RunbookParams,
    SnmpGetParams,
    SshParams,
    Step,
    WaitUntilParams,
)
from schoolops.log import redact as redact_text
from schoolops.units import dec_hook, enc_hook

MASK = "******"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RenderError(CollectorError):
    """A template could not be filled for this run; the message names the placeholder and the step."""


@dataclass(frozen=True)
class Scope:
    """What templates of one run may read. Values are text; a missing key has no value in this run."""

    incident: Mapping[str, str] = field(default_factory=dict)
    fault: Mapping[str, str] = field(default_factory=dict)
    asset: Mapping[str, str] = field(default_factory=dict)  # name, kind, site, role, tier, address, labels.X
    variables: Mapping[str, str] = field(default_factory=dict)  # given at start: override the runbook's


@dataclass(frozen=True)
class PlannedStep:
    """One step with every template filled: ``params`` executes, ``shown`` is for people."""

    position: int
    name: str
    action: str
    params: Params
    shown: str
    mutating: bool
    on_failure: str
    timeout: float
    simulated: str  # what a dry run can say about it: "" when it would execute as shown
    verify: PlannedStep | None = None
    secrets: tuple[str, ...] = ()  # the secret values used (to redact from outputs)


Reveal = Callable[[str], str]


def _masked(name: str) -> str:
    return MASK


class _Filler:
    def __init__(self, runbook: Runbook, scope: Scope, reveal: Reveal | None) -> None:
        self.runbook, self.scope, self.reveal = runbook, scope, reveal
        self.values: dict[str, str] = {}
        self.used_secrets: list[str] = []
        self.step = "variables"
        unknown = sorted(set(scope.variables) - set(runbook.variables))
        if unknown:
            raise RenderError(f"runbook {runbook.name}: no variable named {', '.join(unknown)}; "
                              f"it has {', '.join(runbook.variables) or 'none'}")
        for name, template in runbook.variables.items():
            self.step = f"variables.{name}"
            given = scope.variables.get(name)
            if given is None and template == "":
                raise RenderError(f"runbook {runbook.name}: variable {name!r} has no default: give it with "
                                  f"--var {name}=VALUE")
            self.values[name] = given if given is not None else self.fill(template, lambda v: v, secret=_masked)

    def lookup(self, dotted: str, secret: Reveal) -> str:
        root, _, rest = dotted.partition(".")
        if root == "secret":
            value = secret(rest)
            if secret is not _masked:
                self.used_secrets.append(value)
            return value
        source: Mapping[str, str] | None = {"incident": self.scope.incident, "fault": self.scope.fault,
                                            "asset": self.scope.asset}.get(root)
        if source is None:
            if dotted in self.values:
                return self.values[dotted]
            raise RenderError(f"runbook {self.runbook.name}: {self.step}: no variable {dotted!r}")
        value = source.get(rest)
        if value is None or value == "":
            why = {"incident": "this run has no incident", "fault": "this run was not started by a fault",
                   "asset": f"the asset {self.scope.asset.get('name', '?')!r} has no {rest!r} in the inventory"}[root]
            raise RenderError(f"runbook {self.runbook.name}: {self.step}: {{{{ {dotted} }}}} has no value: {why}"
                              + ("; give the variable that uses it with --var NAME=VALUE" if root != "asset" else ""))
        return value

    def fill(self, text: str, place: Callable[[str], str], *, secret: Reveal) -> str:
        def one(match: re.Match[str]) -> str:
            try:
                return place(self.lookup(match.group(1), secret))
            except RenderError:
                if place is _for_people:  # a message reads fine without it; a command would not
                    return "-"
                raise
        return _PLACEHOLDER.sub(one, text)


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"a value with a line break or control character ({value[:40]!r}) cannot go into a command")
    return value


def _digits(value: str) -> str:
    if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)*", value):
        raise ValueError(f"an OID part must be numeric, got {value[:40]!r}")
    return value


def _url_part(value: str) -> str:
    return urllib.parse.quote(_no_control(value), safe="[]:@")


def _as_text(value: str) -> str:
    return value


def _for_people(value: str) -> str:
    """Text for people (messages, approval reasons): a value this run lacks reads as "-"."""
    return value


_PLACES: dict[type[Params], dict[str, Callable[[str], str]]] = {
    SshParams: {"argv": _as_text, "as_user": _no_control, "expect": re.escape},
    CliParams: {"commands": _no_control, "device": _no_control, "expect": re.escape},
    SnmpGetParams: {"oids": _digits, "device": _no_control, "expect": _no_control},
    HttpParams: {"url": _url_part, "body_contains": _as_text},
    WaitUntilParams: {"target": _no_control},
    NotifyParams: {"message": _for_people},
    ApproveParams: {"reason": _for_people},
    RunbookParams: {},
}


def _render_params(params: Params, filler: _Filler, secret: Reveal) -> Params:
    raw = msgspec.to_builtins(params, enc_hook=enc_hook)
    places = _PLACES[type(params)]

    def walk(value: Any, place: Callable[[str], str]) -> Any:
        if isinstance(value, str):
            return filler.fill(value, place, secret=secret)
        if isinstance(value, (list, tuple)):
            return [walk(item, place) for item in value]
        if isinstance(value, dict):
            return {filler.fill(key, place, secret=secret): walk(item, place) for key, item in value.items()}
        return value

    rendered = {key: walk(value, places[key]) if key in places else value for key, value in raw.items()}
    return msgspec.convert(rendered, type(params), strict=False, dec_hook=dec_hook)


def describe(action: str, params: Params, asset: Mapping[str, str]) -> str:
    """One line (or a few) saying exactly what the step does, for dry runs and run records."""
    where = asset.get("address") or asset.get("name", "?")
    if isinstance(params, SshParams):
        user = asset.get("ssh_user", "?")
        expect = f" (expect /{params.expect}/)" if params.expect else ""
        return f"ssh {user}@{where}: {' '.join(shlex.quote(a) for a in params.argv)}{expect}"
    if isinstance(params, CliParams):
        mode = "configure" if params.config_mode else "show"
        expect = f" (expect /{params.expect}/)" if params.expect else ""
        return f"cli {params.device or where} ({mode}): " + "; ".join(params.commands) + expect
    if isinstance(params, SnmpGetParams):
        expect = f" (expect {', '.join(f'{k} = {v}' for k, v in params.expect.items())})" if params.expect else ""
        return f"snmp get {params.device or where}: {' '.join(params.oids)}{expect}"
    if isinstance(params, HttpParams):
        expect = f"expect {params.expect_status}" + (f" and body containing {params.body_contains!r}"
                                                      if params.body_contains else "")
        return f"http {params.method} {params.url}: {expect}"
    if isinstance(params, WaitUntilParams):
        target = f" {params.target}" if params.target else ""
        return f"wait until {params.condition.value}{target} (at most {params.timeout:g}s)"
    if isinstance(params, NotifyParams):
        return f"notify {', '.join(params.to)}: {params.text_for('en')}"
    if isinstance(params, ApproveParams):
        return f"ask {params.role} to approve: {params.reason} (expires after {params.expires:g}s)"
    if isinstance(params, RunbookParams):
        return f"run runbook {params.name}"
    return action


_NOT_SIMULATED = {
    "wait_until": "not simulated: waits for fresh data from the agent or poller",
    "approve": "not simulated: waits for a person's decision",
    "notify": "not sent in a dry run",
}


def plan(runbook: Runbook, scope: Scope, reveal: Reveal | None = None) -> list[PlannedStep]:
    """Every step of ``runbook`` rendered for ``scope``; ``reveal`` (name → value) only for a real run."""
    filler = _Filler(runbook, scope, reveal)
    steps = []
    for position, step in enumerate(runbook.steps):
        steps.append(_plan_step(position, step, filler, scope))
    return steps


def _plan_step(position: int, step: Step | Check, filler: _Filler, scope: Scope, *, name: str | None = None) -> PlannedStep:
    step_name = name or getattr(step, "name", "verify")
    filler.step = f"step {step_name}"
    try:
        shown_params = _render_params(step.params, filler, _masked)
        filler.used_secrets = []
        params = _render_params(step.params, filler, filler.reveal) if filler.reveal else shown_params
    except (ValueError, msgspec.ValidationError) as exc:
        raise RenderError(f"runbook {filler.runbook.name}: {filler.step}: {exc}") from None
    verify = None
    if isinstance(step, Step) and step.verify is not None:
        verify = _plan_step(position, step.verify, filler, scope, name=f"{step.name}/verify")
    return PlannedStep(
        position=position, name=step_name, action=step.action, params=params,
        shown=describe(step.action, shown_params, scope.asset), mutating=getattr(step, "mutating", False),
        on_failure=str(getattr(step, "on_failure", "abort")), timeout=float(step.timeout),
        simulated=_NOT_SIMULATED.get(step.action, ""), verify=verify, secrets=tuple(filler.used_secrets),
    )


_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b((?:password|passwd|secret|token|api[_-]?key|community)\s*[=:]\s*)(\S+)")


def redact(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """``text`` with every secret value used by the step, agent tokens, bearer credentials and
    ``password=…``-style assignments replaced by the mask."""
    for value in sorted(set(secrets), key=len, reverse=True):
        if len(value) >= 3:
            text = text.replace(value, MASK)
    return _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + MASK, redact_text(text))
