"""The upgrade plan file schema (``runbooks/upgrades/*.yaml``): what, why, when, who approves, and how.

A plan names the assets it upgrades (a patrol :class:`~collector.patrol.model.Selector`), the reason
(a vendor notice, a security advisory, the school's need, with a reference), the approval it needs,
the maintenance window it runs in, and its phases:

1. ``pre_checks`` — the patrol items of each asset must be normal, free disk space, observing steps,
   and the "before" values of the metrics ``post_checks.compare`` will compare;
2. ``backup`` — steps (e.g. a database dump), then ``verify``: the dump file exists, is at least
   ``min_size``, no older than ``max_age``, and an optional ``restore_test`` command succeeds; for
   network devices, ``config: true`` takes a configuration backup through the config-backup store;
3. ``execute`` — steps, ``serial`` assets at a time; ``max_failed_batches`` failed batches stop it;
4. ``post_checks`` — the pre-checks again plus ``compare`` (after vs before, within tolerances);
5. ``rollback`` — steps run on a failed batch's assets (and by hand), followed by the pre-checks
   (the health the assets had before) and the comparison with the values before.

Steps are runbook steps (:mod:`collector.runbooks.model`) and are validated by the runbook loader;
checks may only observe. Nothing here runs anything.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from msgspec import Meta, Struct

from collector.patrol.model import Selector
from collector.rules.measure import METRICS
from collector.runbooks.model import (
    APPROVER_ROLES,
    CHECK_ACTIONS,
    Runbook,
    RunbookName,
    Step,
    Text,
    VariableName,
)
from schoolops.units import ByteSize, Seconds

PHASES = ("pre_checks", "backup", "execute", "post_checks", "rollback")
EXECUTE_ACTIONS = ("ssh", "cli", "snmp_get", "http", "wait_until", "notify")
"""What backup, execute and rollback steps may do: everything a runbook step does except asking for
approval (the plan's ``approval`` does that, once) and calling runbooks."""
PHASE_ACTIONS: dict[str, tuple[str, ...]] = {
    "pre_checks": CHECK_ACTIONS, "backup": EXECUTE_ACTIONS, "execute": EXECUTE_ACTIONS,
    "post_checks": CHECK_ACTIONS, "rollback": EXECUTE_ACTIONS,
}
BACKUP_VARIABLE = "backup_file"
"""The variable holding the rendered ``backup.verify.path``; ``restore_test`` and steps may use it."""

_CHANGE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)\s*\Z")


class ReasonSource(enum.StrEnum):
    VENDOR_NOTICE = "vendor_notice"
    SECURITY_ADVISORY = "security_advisory"
    SCHOOL_NEED = "school_need"
    FAULT_FIX = "fault_fix"


class Reason(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    source: ReasonSource
    reference: Text  # the vendor's notice number, the advisory, the request
    detail: Text | None = None


class Approval(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    role: str
    expires: Seconds = Seconds(7 * 24 * 3600)  # the request lapses if nobody decides within this

    def __post_init__(self) -> None:
        if self.role not in APPROVER_ROLES:
            raise ValueError(f"role: {self.role!r} cannot approve: use {', '.join(APPROVER_ROLES)}")


class Window(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """When the upgrade may run: from ``start`` (ISO 8601 with an offset; default: when approved) for
    ``duration``. The affected assets are in maintenance while it runs; execution that has not
    finished when ``duration`` has passed stops, and the failed batch rolls back."""

    duration: Seconds
    start: str | None = None

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise ValueError("duration: must be longer than 0s")


class FreeDisk(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The filesystem mounted at ``path`` has at least ``min`` available (from the agent's report)."""

    path: Annotated[str, Meta(pattern=r"^/", max_length=1024)]
    min: ByteSize


class Tolerance(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One metric compared after vs before: ``max_increase`` / ``max_decrease`` as a number in the
    metric's unit or a percentage of the value before (``"50%"``). Before: at the pre-checks; after:
    from a report taken after the change."""

    metric: str
    key: str = ""  # the mountpoint, probe name, process name... ("" for metrics without one)
    asset: str | None = None  # another asset's metric (e.g. the portal service in front); default: each upgraded one
    max_increase: float | str | None = None
    max_decrease: float | str | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric: unknown measurement {self.metric!r}; known: {', '.join(sorted(METRICS))}")
        if self.max_increase is None and self.max_decrease is None:
            raise ValueError("give max_increase, max_decrease or both")
        for name in ("max_increase", "max_decrease"):
            value = getattr(self, name)
            if value is not None:
                parse_change(value, name)

    def limit(self, name: str, before: float) -> float | None:
        """The allowed change (in the metric's unit) for ``before``; None when not limited."""
        value = getattr(self, name)
        if value is None:
            return None
        amount, relative = parse_change(value, name)
        return abs(before) * amount / 100.0 if relative else amount


def parse_change(value: float | str, name: str) -> tuple[float, bool]:
    """``(amount, relative)`` from ``5``, ``0.2`` or ``"50%"``; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: a number or a percentage such as \"50%\", not {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name}: must not be negative")
        return float(value), False
    match = _CHANGE.match(value)
    if not match:
        raise ValueError(f"{name}: a number or a percentage such as \"50%\", not {value!r}")
    return float(match.group(1)), bool(match.group(2))


class Compare(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    metrics: Annotated[tuple[Tolerance, ...], Meta(min_length=1)]


class RawChecks(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    patrol: bool = True  # the patrol items that apply to each asset must be normal
    free_disk: tuple[FreeDisk, ...] = ()
    steps: list[dict[str, Any]] = []
    wait: Seconds = Seconds(120)  # post-checks: at most this long for a report taken after the change
    compare: Compare | None = None  # post-checks only


class BackupFile(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    path: Annotated[str, Meta(min_length=2, max_length=1024)]  # a template: {{ asset.name }}, variables
    min_size: ByteSize = ByteSize(1)
    max_age: Seconds = Seconds(3600)
    restore_test: Annotated[tuple[str, ...], Meta(min_length=1)] | None = None  # argv; exit 0 = restorable


class RawBackup(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    steps: list[dict[str, Any]] = []
    verify: BackupFile | None = None
    config: bool = False  # network devices: a configuration backup through the config-backup store


class RawPhase(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    steps: Annotated[list[dict[str, Any]], Meta(min_length=1)]


class PlanFile(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One file, with steps still raw so that errors can name the phase and the step."""

    name: RunbookName
    description: Text
    reason: Reason
    assets: Selector
    approval: Approval
    window: Window
    execute: RawPhase
    rollback: RawPhase
    backup: RawBackup
    serial: Annotated[int, Meta(ge=1)] = 1
    max_failed_batches: Annotated[int, Meta(ge=1)] = 1
    variables: dict[VariableName, str] = {}
    pre_checks: RawChecks = RawChecks()
    post_checks: RawChecks = RawChecks()


class Checks(Struct, kw_only=True, frozen=True):
    patrol: bool
    free_disk: tuple[FreeDisk, ...]
    steps: Runbook
    wait: Seconds
    compare: tuple[Tolerance, ...] = ()


class Backup(Struct, kw_only=True, frozen=True):
    steps: Runbook  # the plan's backup steps, then what the verification reads (the file's size and time, the clock)
    verify: BackupFile | None
    config: bool
    restore_test: Runbook  # run once the file itself passed (no steps when the plan gives none)


class Plan(Struct, kw_only=True, frozen=True):
    name: str
    description: str
    reason: Reason
    assets: Selector
    approval: Approval
    window: Window
    serial: int
    max_failed_batches: int
    variables: dict[str, str]
    pre_checks: Checks
    backup: Backup
    execute: Runbook
    post_checks: Checks
    rollback: Runbook
    source: str = ""
    text: str = ""  # the file as read: what was approved is what runs

    def phase_steps(self) -> dict[str, tuple[Step, ...]]:
        return {"pre_checks": self.pre_checks.steps.steps,
                "backup": self.backup.steps.steps + self.backup.restore_test.steps,
                "execute": self.execute.steps, "post_checks": self.post_checks.steps.steps,
                "rollback": self.rollback.steps}
