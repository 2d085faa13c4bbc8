"""The upgrade's decisions, pure: batches, whether a backup file is good, free disk, before vs after.

Each function takes data (and ``now`` where time matters) and returns a :class:`Verdict` or a value;
nothing here reads a clock, a file or the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from collector.upgrades.model import BackupFile, FreeDisk, Tolerance


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str  # what was seen, against what was asked


def batches(assets: Sequence[str], serial: int) -> list[list[str]]:
    """The assets in order, ``serial`` at a time."""
    ordered = sorted(assets)
    return [ordered[i:i + serial] for i in range(0, len(ordered), serial)]


def size_text(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def backup_file(spec: BackupFile, path: str, stat_output: str, clock_output: str) -> Verdict:
    """Judge the dump from ``stat --format '%s %Y'`` and the host's ``date +%s`` (its own clock)."""
    try:
        size_text_, mtime_text = stat_output.split()
        size, mtime, now = int(size_text_), int(mtime_text), int(clock_output.strip())
    except ValueError:
        return Verdict(False, f"{path}: cannot read its size and time from {stat_output.strip()[:200]!r}")
    age = max(0, now - mtime)
    problems = []
    if size < spec.min_size:
        problems.append(f"{size_text(size)}, less than the {size_text(spec.min_size)} expected"
                        + (" (empty)" if size == 0 else ""))
    if age > spec.max_age:
        problems.append(f"{duration_text(age)} old, older than {duration_text(float(spec.max_age))}: not made now")
    seen = f"{path}: {size_text(size)}, {duration_text(age)} old"
    if problems:
        return Verdict(False, f"{path}: " + "; ".join(problems))
    return Verdict(True, seen)


def free_disk(spec: FreeDisk, available: float | None) -> Verdict:
    if available is None:
        return Verdict(False, f"{spec.path}: no such filesystem in the agent's report")
    seen = f"{spec.path}: {size_text(available)} available (at least {size_text(spec.min)})"
    return Verdict(available >= spec.min, seen)


def compare(tolerance: Tolerance, before: float | None, after: float | None) -> Verdict:
    """``after`` within the tolerance of ``before``."""
    what = tolerance.metric + (f"[{tolerance.key}]" if tolerance.key else "")
    if before is None or after is None or not (math.isfinite(before) and math.isfinite(after)):
        missing = "before" if before is None else "after"
        return Verdict(False, f"{what}: no value {missing} the upgrade to compare")
    change = after - before
    relative = f" ({change / before:+.0%})" if before else ""
    seen = f"{what}: before {_num(before)}, after {_num(after)}{relative}"
    limits = []
    up = tolerance.limit("max_increase", before)
    down = tolerance.limit("max_decrease", before)
    if up is not None:
        limits.append(f"at most +{_num(up)}")
        if change > up + 1e-12:
            return Verdict(False, f"{seen}: rose more than allowed (+{_num(up)})")
    if down is not None:
        limits.append(f"at most -{_num(down)}")
        if -change > down + 1e-12:
            return Verdict(False, f"{seen}: fell more than allowed (-{_num(down)})")
    return Verdict(True, f"{seen}, {' and '.join(limits)}")


def _num(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


@dataclass(frozen=True)
class Progress:
    """Where the rollout stands after some batches."""

    failed_batches: int
    max_failed_batches: int

    @property
    def stop(self) -> bool:
        return self.failed_batches >= self.max_failed_batches


def outcome(*, failed_assets: int, rolled_back_ok: bool, healthy_after: bool) -> str:
    """How an upgrade that got past its pre-checks and backup ended (see :data:`collector.store.upgrades.FINAL`)."""
    if failed_assets == 0:
        return "succeeded"
    return "rolled_back" if rolled_back_ok and healthy_after else "rollback_failed"


def approval_refusal(*, upgrade_id: int, state: str, role: str | None, requested_by: str, expires_at: float | None,
                     person: str, roles: Sequence[str] | frozenset[str] | set[str], now: float) -> str | None:
    """Why ``person`` (holding ``roles``) may not approve or deny the upgrade now; None if they may."""
    if state != "waiting_approval":
        return f"upgrade {upgrade_id} is {state.replace('_', ' ')}, not waiting for approval"
    if expires_at is not None and now >= expires_at:
        return f"upgrade {upgrade_id}: the request expired; ask again with schoolops upgrade run"
    if person == requested_by:
        return f"upgrade {upgrade_id}: {person} requested it and cannot approve their own plan"
    if role not in set(roles):
        return f"upgrade {upgrade_id}: only someone with the {role} role may decide; {person} does not have it"
    return None
