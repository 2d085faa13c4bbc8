"""Judge a fault's type and severity (the regulation's 判斷故障類型和嚴重程度), with the reason written out.

A pure function of the finding, what is known about the asset, how wide the fault is, the school
calendar's state and ``now``. The rules, applied in this order, one level per step:

1. **Base**: the rule's severity for the finding. ``info`` stays ``info`` whatever happens.
2. **Tier**: a core asset raises one level; a normal-tier asset lowers one level (not for a
   security fault); an important asset is unchanged.
3. **Scope**: several assets failing together raise one level (at most one, however wide):
   ``scope_min_assets`` or more of the same site failing with the same rule, or at least
   ``scope_ratio`` of the site's assets (when the site has two or more and at least two fail);
   the same test for the assets under the same parent.
4. **Calendar**, for assets that serve teaching (role in ``teaching_roles``) or are core: an exam
   day raises one level; otherwise class hours raise one level; otherwise a holiday, a weekend or
   the school break lowers one level (not for a security fault, not for a core asset).
5. **Duration**: a fault lasting ``long_duration`` or longer raises one level.

Bounds: never above P1, never below P4 (lowering never silences a fault), and never more than two
levels above the base: a P4 can reach P2 but not P1 on its own; a major fault needs a major cause.
Every rule that applies is written into the reason: what it did ("raised to P2: core asset"), or
why it did nothing ("not raised (already P1): core asset"). The type is the finding's type.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.calendar import SCHOOL_BREAK, WEEKEND, CalendarState
from collector.domain import AssetContext, FaultType, Finding, Severity
from schoolops.wire import Tier

MAX_RAISE = 2  # levels above the base, in total


@dataclass(frozen=True)
class ScopeInfo:
    failing_in_site: int  # assets of the same site with an active fault of the same rule (this one included)
    assets_in_site: int
    failing_siblings: int  # assets with the same parent that are failing (this one included)
    siblings: int


@dataclass(frozen=True)
class ClassifyPolicy:
    teaching_roles: frozenset[str] = frozenset({"teaching", "classroom", "lms", "web", "exam", "network-access", "wifi"})
    scope_min_assets: int = 3  # this many failing together in a site / under a parent raise one level
    scope_ratio: float = 0.5  # or this share of the site's / parent's assets
    long_duration: float = 4 * 3600  # a fault lasting this long is raised one level


@dataclass(frozen=True)
class Classification:
    type: FaultType
    severity: Severity
    base: Severity
    reason: str  # one English sentence: the base, the rule, the summary, then every step in order
    steps: tuple[str, ...]  # each step as a short phrase, in order


def classify(
    finding: Finding,
    asset: AssetContext,
    scope: ScopeInfo,
    calendar: CalendarState,
    *,
    now: float,
    policy: ClassifyPolicy = ClassifyPolicy(),
) -> Classification:
    base = finding.severity
    head = f"{base.label} from rule {finding.rule} ({finding.summary})"
    if base is Severity.INFO:
        reason = f"{head}; no adjustment: info is recorded, never raised or lowered"
        return Classification(finding.type, base, base, reason, ())
    judge = _Judge(base)
    security = finding.type is FaultType.SECURITY
    core = asset.tier is Tier.CORE

    if core:
        judge.raise_("core asset")
    elif asset.tier is Tier.NORMAL:
        judge.lower("normal-tier asset", exempt="security fault" if security else None)

    wide = _wide_scope(asset, scope, policy)
    if wide:
        judge.raise_(wide)

    serves_teaching = asset.role in policy.teaching_roles
    if serves_teaching or core:
        whom = "an asset that serves teaching" if serves_teaching else "a core asset"
        if calendar.exam_day is not None:
            judge.raise_(f"exam day ({calendar.exam_day}) on {whom}")
        elif calendar.class_hours:
            judge.raise_(f"class hours on {whom}")
        elif calendar.holiday is not None:
            exempt = "security fault" if security else "core asset" if core else None
            judge.lower(_day_off(calendar.holiday), exempt=exempt)

    lasted = now - finding.since
    if lasted >= policy.long_duration:
        judge.raise_(f"lasting {_duration(lasted)} (over {_duration(policy.long_duration)})")

    reason = head if judge.moved else f"{head}; no adjustment"
    reason = "; ".join([reason, *judge.steps])
    return Classification(finding.type, judge.level, base, reason, tuple(judge.steps))


class _Judge:
    """The running level and the phrases that explain it."""

    def __init__(self, base: Severity) -> None:
        self.base = base
        self.level = base
        self.ceiling = base.raised(MAX_RAISE)
        self.steps: list[str] = []
        self.moved = False

    def raise_(self, cause: str) -> None:
        if self.level is Severity.P1:
            self.steps.append(f"not raised (already P1): {cause}")
        elif self.level <= self.ceiling:
            self.steps.append(f"not raised (at most {MAX_RAISE} levels above {self.base.label}): {cause}")
        else:
            self._move(self.level.raised(), "raised", cause)

    def lower(self, cause: str, *, exempt: str | None = None) -> None:
        if exempt is not None:
            self.steps.append(f"not lowered ({exempt}): {cause}")
        elif self.level is Severity.P4:
            self.steps.append(f"not lowered (already P4): {cause}")
        else:
            self._move(self.level.lowered(), "lowered", cause)

    def _move(self, to: Severity, verb: str, cause: str) -> None:
        self.level = to
        self.moved = True
        self.steps.append(f"{verb} to {to.label}: {cause}")


def _wide_scope(asset: AssetContext, scope: ScopeInfo, policy: ClassifyPolicy) -> str | None:
    """The phrase for a fault that several assets share, or None when it is one asset's own."""

    def wide(failing: int, total: int) -> bool:
        if failing >= policy.scope_min_assets:
            return True
        return failing >= 2 and total >= 2 and failing / total >= policy.scope_ratio

    if wide(scope.failing_in_site, scope.assets_in_site):
        where = f"site {asset.site}" if asset.site else "the site"
        return f"{scope.failing_in_site} of {scope.assets_in_site} assets in {where} failing"
    if wide(scope.failing_siblings, scope.siblings):
        under = f"parent {asset.parents[0]}" if len(asset.parents) == 1 else "the same parent"
        return f"{scope.failing_siblings} of {scope.siblings} assets under {under} failing"
    return None


def _day_off(holiday: str) -> str:
    return holiday if holiday in (WEEKEND, SCHOOL_BREAK) else f"holiday ({holiday})"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p) or f"{int(seconds)}s"
