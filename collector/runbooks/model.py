"""The runbook file schema (``runbooks/**/*.yaml``): when a runbook applies, its variables, its steps.

A step names an ``action``; :data:`STEP_ACTIONS` maps each action to the struct its ``params``
must fit (the seam a new step kind is added through). The loader (:mod:`collector.runbooks.loader`)
reads a file as :class:`RunbookFile` with raw steps, validates each step as :class:`RawStep`, its
params against the action's struct and every ``{{ placeholder }}`` against the names in scope,
then builds the frozen :class:`Runbook`. Nothing here runs anything.

Commands are argument lists: the program is ``argv[0]``, a plain name or path; an executor quotes
every argument, so no string is ever handed to a shell as built.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from collector.domain import FaultType, Severity
from schoolops.units import Seconds

RunbookName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]*\Z", max_length=64)]
StepName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]*\Z", max_length=64)]
VariableName = Annotated[str, Meta(pattern=r"^[a-z_][a-z0-9_]*\Z", max_length=64)]
Text = Annotated[str, Meta(min_length=1)]

TEMPLATE_ROOTS = ("incident", "fault", "asset", "secret")
"""What every template may use besides the runbook's own variables: the incident, the fault that
started the run and the asset it runs against (``{{ fault.key }}``, ``{{ asset.name }}``), and
stored credentials (``{{ secret.NAME }}``: decrypted only when the step runs, masked everywhere
it is shown or recorded, and redacted from the output)."""

DEFAULT_STEP_TIMEOUT = Seconds(60)

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_PROGRAM = re.compile(r"^[A-Za-z0-9_./+-]+\Z")
_OID = re.compile(r"^\.?[0-9]+(?:\.(?:[0-9]+|\{\{ *[A-Za-z_][A-Za-z0-9_.]* *\}\}))+\Z")
_NOTIFY_TARGET = re.compile(r"^(?:primary|backup|director|(?:role|person|channel):[A-Za-z0-9_.@+-]+)\Z")


class Params(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of every step action's parameters."""


def _check_regex(pattern: str | None) -> None:
    if pattern is None or "{{" in pattern:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"expect: {pattern!r} is not a regular expression: {exc}") from None


class SshParams(Params, frozen=True):
    """Run a program on the asset over SSH (key auth, host key verified); every argument is quoted."""

    argv: Annotated[tuple[str, ...], Meta(min_length=1)]
    as_user: Text | None = None
    expect: Text | None = None  # a regular expression the output must match (besides exit status 0)

    def __post_init__(self) -> None:
        _check_regex(self.expect)
        program = self.argv[0]
        if not _PROGRAM.match(program):
            raise ValueError(
                f"argv: commands are argument lists, never shell strings: argv[0] {program!r} must be "
                "one program name or path, e.g. [systemctl, restart, nginx]"
            )


class CliParams(Params, frozen=True):
    """Show (or, with ``config_mode``, configuration) commands on a network device, one per line."""

    commands: Annotated[tuple[Text, ...], Meta(min_length=1)]
    config_mode: bool = False
    device: Text | None = None  # another asset of the inventory to run them on (default: the run's asset)
    expect: Text | None = None  # a regular expression the output must match

    def __post_init__(self) -> None:
        _check_regex(self.expect)
        for command in self.commands:
            if "\n" in command or "\r" in command:
                raise ValueError(f"commands: one command per item, without line breaks: {command!r}")


class SnmpGetParams(Params, frozen=True):
    oids: Annotated[tuple[str, ...], Meta(min_length=1)]
    device: Text | None = None  # another asset of the inventory to ask (default: the run's asset)
    expect: dict[str, str] | None = None  # OID → the value it must have (as text), e.g. {"1.3…8.3": "1"}

    def __post_init__(self) -> None:
        for oid in self.oids:
            if not _OID.match(oid):
                raise ValueError(f"oids: {oid!r} is not a numeric OID such as 1.3.6.1.2.1.2.2.1.8.3")


class HttpParams(Params, frozen=True):
    url: Annotated[str, Meta(pattern=r"^https?://\S+\Z")]
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    expect_status: Annotated[int, Meta(ge=100, le=599)] = 200
    body_contains: Text | None = None


class WaitCondition(enum.StrEnum):
    FAULT_CLEARED = "fault_cleared"  # the fault that started the run is no longer firing
    PORT_LISTENING = "port_listening"  # the agent reports the port `target` listening again
    PROBE_UP = "probe_up"  # the active probe `target` succeeds again


class WaitUntilParams(Params, frozen=True):
    """Wait for a condition on fresh data, at most ``timeout``."""

    condition: WaitCondition
    target: Text | None = None
    timeout: Seconds = Seconds(300)


MESSAGE_LANGUAGES = ("en", "zh-CN", "zh-TW")


class NotifyParams(Params, frozen=True):
    """Send a message: one text for everyone, or one per language (each person gets theirs)."""

    to: Annotated[tuple[str, ...], Meta(min_length=1)]
    message: Text | dict[str, Text]

    def __post_init__(self) -> None:
        for target in self.to:
            if not _NOTIFY_TARGET.match(target):
                raise ValueError(
                    f"to: {target!r} is not a target: use primary, backup, director, "
                    "role:NAME, person:NAME or channel:NAME"
                )
        if isinstance(self.message, dict):
            unknown = [k for k in self.message if k not in MESSAGE_LANGUAGES]
            if unknown or "en" not in self.message:
                raise ValueError(
                    f"message: by language, with {', '.join(MESSAGE_LANGUAGES)} keys and at least en"
                    + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                )

    def text_for(self, language: str) -> str:
        if isinstance(self.message, str):
            return self.message
        return self.message.get(language) or self.message.get(language.split("-")[0]) or self.message["en"]


APPROVER_ROLES = ("director", "on-call", "operator")


class ApproveParams(Params, frozen=True):
    """Ask a role to approve before the next steps; nobody approves their own request."""

    role: str
    reason: Text
    expires: Seconds = Seconds(24 * 3600)

    def __post_init__(self) -> None:
        if self.role not in APPROVER_ROLES:
            raise ValueError(f"role: {self.role!r} cannot approve: use {', '.join(APPROVER_ROLES)}")


class RunbookParams(Params, frozen=True):
    """Run another runbook, with this run's incident, fault and asset."""

    name: RunbookName


STEP_ACTIONS: dict[str, type[Params]] = {
    "ssh": SshParams,
    "cli": CliParams,
    "snmp_get": SnmpGetParams,
    "http": HttpParams,
    "wait_until": WaitUntilParams,
    "notify": NotifyParams,
    "approve": ApproveParams,
    "runbook": RunbookParams,
}
"""Each step action and the struct its params must fit."""

CHECK_ACTIONS = ("ssh", "cli", "snmp_get", "http", "wait_until")
"""The actions a step's ``verify`` may use: ones that observe rather than page, ask or call."""


class OnFailure(enum.StrEnum):
    ABORT = "abort"  # stop the run; the incident stays open
    CONTINUE = "continue"  # record the failure and go on with the next step
    ESCALATE = "escalate"  # stop the run and escalate the incident with the step's failure


class When(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Which incidents start the runbook automatically: every given key must match; a list is an OR."""

    severity: Annotated[tuple[Literal["P1", "P2", "P3", "P4"], ...], Meta(min_length=1)] | None = None
    type: Annotated[tuple[FaultType, ...], Meta(min_length=1)] | None = None
    rule: Annotated[tuple[str, ...], Meta(min_length=1)] | None = None
    labels: dict[str, str] | None = None

    @property
    def severities(self) -> frozenset[Severity] | None:
        return None if self.severity is None else frozenset(Severity.parse(s) for s in self.severity)


class RunbookFile(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One file, with its steps still raw so that each step's errors can name the step."""

    name: RunbookName
    description: Text
    steps: Annotated[list[dict[str, Any]], Meta(min_length=1)]
    when: When | None = None
    manual: bool = False
    safe_for_automation: bool = False
    timeout: Seconds = Seconds(600)
    variables: dict[VariableName, str] = {}


class RawCheck(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    action: str
    params: dict[str, Any] = {}
    timeout: Seconds = DEFAULT_STEP_TIMEOUT


class RawStep(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: StepName
    action: str
    params: dict[str, Any] = {}
    timeout: Seconds = DEFAULT_STEP_TIMEOUT
    on_failure: OnFailure = OnFailure.ABORT
    mutating: bool = False
    verify: dict[str, Any] | None = None


class Check(Struct, kw_only=True, frozen=True):
    """A step's ``verify``: an observing action that proves the step worked."""

    action: str
    params: Params
    timeout: Seconds = DEFAULT_STEP_TIMEOUT


class Step(Struct, kw_only=True, frozen=True):
    name: str
    action: str
    params: Params
    timeout: Seconds = DEFAULT_STEP_TIMEOUT
    on_failure: OnFailure = OnFailure.ABORT
    mutating: bool = False
    verify: Check | None = None


class Runbook(Struct, kw_only=True, frozen=True):
    name: str
    description: str
    steps: tuple[Step, ...]
    when: When | None = None
    manual: bool = False
    safe_for_automation: bool = False
    timeout: Seconds = Seconds(600)
    variables: dict[str, str] = {}
    source: str = ""  # the file it was read from

    @property
    def automatic(self) -> bool:
        """An incident matching ``when`` starts it; a manual runbook is started by people or runbooks."""
        return self.when is not None and not self.manual


def placeholders(text: str) -> list[str]:
    """The stripped contents of every ``{{ ... }}`` in ``text``."""
    return [m.group(1).strip() for m in _PLACEHOLDER.finditer(text)]


def check_template(text: str, names: tuple[str, ...] | list[str]) -> str | None:
    """Why ``text`` is not a valid template with ``names`` (the runbook variables in scope), or None.

    A placeholder is ``{{ name }}`` (a variable) or ``{{ root.field }}`` with a root in
    :data:`TEMPLATE_ROOTS`; there are no filters or expressions.
    """
    for inside in placeholders(text):
        if not _DOTTED_NAME.match(inside):
            return f"{{{{ {inside} }}}} is not a placeholder: write {{{{ name }}}} or {{{{ root.field }}}}"
        root, _, rest = inside.partition(".")
        if root in TEMPLATE_ROOTS:
            if not rest:
                return f"{{{{ {root} }}}} names no field: write {{{{ {root}.FIELD }}}}"
            continue
        if root in names:
            if rest:
                return f"{{{{ {inside} }}}}: variable {root!r} is text and has no fields"
            continue
        known = ", ".join([*(f"{r}.*" for r in TEMPLATE_ROOTS), *names])
        return f"unknown template variable {root!r} in {{{{ {inside} }}}}: use {known}"
    rest = _PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        return "an unclosed {{ or a stray }}: write {{ name }}"
    return None
