"""The rule file schema (``alerts/*.yaml``): rules of four kinds, and overrides per asset group.

A rule file holds ``rules`` and ``overrides``; the loader (:mod:`collector.rules.loader`)
validates each entry against the struct of its ``kind`` and then :func:`check_rule` checks what
a struct cannot say alone (levels in order, recovery on the right side, a known metric, a summary
template with known fields). Structs are frozen: an override makes a new rule with
``msgspec.structs.replace``.

Kinds:

- ``threshold``: a measurement beyond ``levels`` (``{P4: 80, P3: 90}``); the most severe level
  reached wins; once firing it clears only past ``recovery`` (hysteresis).
- ``absence``: no report from the asset for ``intervals`` × its report interval.
- ``rate``: at the least-squares rate over ``window``, the measurement reaches ``target`` within
  ``predict``.
- ``state``: the measurement has a ``bad`` value (``severity``), or a value listed in ``levels``
  (``{1: P4, 2: P3}``).
"""

from __future__ import annotations

import difflib
import functools
import itertools
import string
from typing import Annotated, Any, Literal, TypeAlias

from msgspec import Meta, Struct, field

from collector.domain import AssetContext, FaultType, Severity
from collector.rules.measure import METRICS
from schoolops.units import Seconds
from schoolops.wire import Tier

RuleId = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*\Z", max_length=64)]
Choices = Annotated[tuple[str, ...], Meta(min_length=1)]

SUMMARY_FIELDS = ("asset", "key", "value", "level", "severity")
"""Fields a summary template may use: asset name, measurement key, value, the level compared
against (threshold crossed, silence limit, rate target, state value) and the severity label."""

OVERRIDABLE = ("levels", "recovery", "for", "severity", "enabled", "intervals", "predict", "bad")
"""The keys an override's ``set`` may change (those that exist in the rule's kind)."""

_SEVERITY_NAMES = "P1, P2, P3, P4 or info"


class Selector(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Which assets a rule or override applies to: every given key must match; a list is an OR."""

    site: Choices | None = None
    role: Choices | None = None
    tier: Annotated[tuple[Tier, ...], Meta(min_length=1)] | None = None
    asset: Choices | None = None
    kind: Choices | None = None

    def matches(self, asset: AssetContext) -> bool:
        pairs: tuple[tuple[tuple[str, ...] | None, str], ...] = (
            (self.site, asset.site),
            (self.role, asset.role),
            (self.tier, asset.tier),
            (self.asset, asset.name),
            (self.kind, asset.kind),
        )
        return all(allowed is None or value in allowed for allowed, value in pairs)


class _Rule(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, tag_field="kind"):
    id: RuleId
    type: FaultType
    summary: Annotated[str, Meta(min_length=1, max_length=1024)]
    match: Selector | None = None
    enabled: bool = True
    # the asset is down while this fires: its children's faults become consequences (absence rules always do)
    marks_down: bool = False

    @property
    def kind(self) -> str:
        tag = type(self).__struct_config__.tag
        assert isinstance(tag, str)
        return tag

    def applies_to(self, asset: AssetContext) -> bool:
        return self.enabled and (self.match is None or self.match.matches(asset))

    def describe(self, *, asset: str, key: str, value: float, level: float, severity: Severity) -> str:
        return self.summary.format(asset=asset, key=key, value=value, level=level, severity=severity.label)


class ThresholdRule(_Rule, tag="threshold", frozen=True):
    metric: str
    levels: dict[str, float]  # severity name → threshold
    direction: Literal["above", "below"] = "above"
    recovery: float | None = None  # default: the least severe level's threshold
    for_: Seconds = field(default=Seconds(0), name="for")

    def ordered_levels(self) -> tuple[tuple[Severity, float], ...]:
        """(severity, threshold), most severe first."""
        return _ordered_levels(tuple(self.levels.items()))

    def recovery_level(self) -> float:
        """Where a firing finding clears; never inside the firing range, even after stacked overrides."""
        least = self.ordered_levels()[-1][1]
        recovery = least if self.recovery is None else self.recovery
        return min(recovery, least) if self.direction == "above" else max(recovery, least)

    def crosses(self, value: float, threshold: float) -> bool:
        return value >= threshold if self.direction == "above" else value <= threshold


@functools.lru_cache(maxsize=4096)
def _ordered_levels(levels: tuple[tuple[str, float], ...]) -> tuple[tuple[Severity, float], ...]:
    # every report evaluates every threshold rule: parse and sort each distinct set of levels once
    return tuple(sorted(((Severity.parse(name), value) for name, value in levels), key=lambda p: p[0]))


class AbsenceRule(_Rule, tag="absence", frozen=True):
    severity: str
    intervals: Annotated[float, Meta(gt=0)] = 3.0

    @property
    def base_severity(self) -> Severity:
        return Severity.parse(self.severity)


class RateRule(_Rule, tag="rate", frozen=True):
    metric: str
    severity: str
    predict: Seconds
    target: float = 0.0
    window: Seconds = Seconds(1800)
    min_samples: Annotated[int, Meta(ge=2, le=720)] = 4
    for_: Seconds = field(default=Seconds(0), name="for")

    @property
    def base_severity(self) -> Severity:
        return Severity.parse(self.severity)


class StateRule(_Rule, tag="state", frozen=True):
    metric: str
    bad: tuple[float, ...] | None = None  # values that are a problem, at `severity`
    severity: str | None = None
    levels: dict[float, str] | None = None  # or: value → severity name
    for_: Seconds = field(default=Seconds(0), name="for")

    def severity_of(self, value: float) -> Severity | None:
        if self.levels is not None:
            name = self.levels.get(value)
            return Severity.parse(name) if name is not None else None
        if self.bad is not None and self.severity is not None and value in self.bad:
            return Severity.parse(self.severity)
        return None


Rule: TypeAlias = ThresholdRule | AbsenceRule | RateRule | StateRule
RULE_KINDS: dict[str, type[Rule]] = {"threshold": ThresholdRule, "absence": AbsenceRule, "rate": RateRule, "state": StateRule}


def field_names(kind: type[Rule]) -> tuple[str, ...]:
    """The keys a rule file may use for ``kind``, as written in YAML (``for``, not ``for_``)."""
    return ("kind", *kind.__struct_encode_fields__)


def attribute_name(kind: type[Rule], key: str) -> str:
    return kind.__struct_fields__[kind.__struct_encode_fields__.index(key)]


class Override(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """``set`` changes rule ``rule`` for the assets ``match`` selects (every asset without ``match``)."""

    rule: RuleId
    set_: Annotated[dict[str, Any], Meta(min_length=1)] = field(name="set")
    match: Selector | None = None


class RuleFile(Struct, forbid_unknown_fields=True, kw_only=True):
    """One file's entries before each is validated against its kind (so errors can name the rule)."""

    rules: list[dict[str, Any]] = []
    overrides: list[dict[str, Any]] = []


def unknown_name(what: str, name: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
    return f"unknown {what} {name!r}{hint}"


def check_rule(rule: Rule) -> tuple[str, str] | None:
    """The first problem a struct cannot catch alone, as ``(key, reason)``; None if the rule is sound."""
    if not isinstance(rule, AbsenceRule) and rule.metric not in METRICS:
        return "metric", unknown_name("measurement", rule.metric, list(METRICS))
    problem = _check_summary(rule.summary)
    if problem:
        return "summary", problem
    if isinstance(rule, ThresholdRule):
        return _check_threshold(rule)
    if isinstance(rule, StateRule):
        return _check_state(rule)
    if not _is_severity(rule.severity):
        return "severity", f"{rule.severity!r} is not a severity: use {_SEVERITY_NAMES}"
    if isinstance(rule, RateRule) and (rule.predict <= 0 or rule.window <= 0):
        return ("predict" if rule.predict <= 0 else "window"), "must be longer than 0s"
    return None


def _is_severity(name: object) -> bool:
    try:
        Severity.parse(str(name))
    except ValueError:
        return False
    return isinstance(name, str)


def _check_threshold(rule: ThresholdRule) -> tuple[str, str] | None:
    if not rule.levels:
        return "levels", "give at least one level, e.g. {P4: 80, P3: 90}"
    for name in rule.levels:
        if not _is_severity(name):
            return f"levels.{name}", f"{name!r} is not a severity: use {_SEVERITY_NAMES}"
    ordered = rule.ordered_levels()
    if len({severity for severity, _ in ordered}) < len(ordered):
        return "levels", "a severity is given twice"
    beyond = "above" if rule.direction == "above" else "below"
    for (severe, high), (milder, low) in itertools.pairwise(ordered):
        if not (high > low if rule.direction == "above" else high < low):
            return "levels", (
                f"{severe.label} ({high:g}) must be {beyond} {milder.label} ({low:g}): "
                f"with direction {rule.direction}, a more severe level is further {beyond}"
            )
    least_severity, least = ordered[-1]
    if rule.recovery is not None and rule.crosses(rule.recovery, least) and rule.recovery != least:
        side = "at or below" if rule.direction == "above" else "at or above"
        return "recovery", (
            f"{rule.recovery:g} would never clear: it must be {side} the least severe level "
            f"({least_severity.label} {least:g})"
        )
    return None


def _check_state(rule: StateRule) -> tuple[str, str] | None:
    if rule.levels is not None:
        if rule.bad is not None or rule.severity is not None:
            return ("bad" if rule.bad is not None else "severity"), "give either levels or bad with severity, not both"
        if not rule.levels:
            return "levels", "give at least one value, e.g. {1: P4, 2: P3}"
        for value, name in rule.levels.items():
            if not _is_severity(name):
                return f"levels.{value:g}", f"{name!r} is not a severity: use {_SEVERITY_NAMES}"
        return None
    if not rule.bad:
        return "bad", "give the values that are a problem, e.g. [0] (or levels: {value: severity})"
    if rule.severity is None:
        return "severity", "a state rule with bad values needs a severity"
    if not _is_severity(rule.severity):
        return "severity", f"{rule.severity!r} is not a severity: use {_SEVERITY_NAMES}"
    return None


def _check_summary(template: str) -> str | None:
    """Refuse fields other than SUMMARY_FIELDS (no attribute or index access) and bad format specs."""
    try:
        for _, name, _, _ in string.Formatter().parse(template):
            if name is None:
                continue
            if name not in SUMMARY_FIELDS:
                shown = "{" + name + "}" if name else "{} (a positional field)"
                return f"unknown field {shown}: use {', '.join('{' + f + '}' for f in SUMMARY_FIELDS)}"
        template.format(asset="web-01", key="/var", value=1.5, level=1.0, severity="P3")
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        return f"not a valid template: {exc}"
    return None
