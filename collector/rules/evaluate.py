"""Pure rule evaluation: an asset's latest report, its rules and ``now`` → the findings active now.

:func:`evaluate_asset` returns the COMPLETE list of findings that hold for the asset at ``now``
(the caller diffs it with the previous list to see what fired and what cleared) and a new
:class:`AssetRuleState` to pass next time. It reads no clock, does no I/O and logs nothing.

It runs when a report arrives and on periodic ticks with the same report; what it remembers:

- ``pending``: for every condition that holds, since when (kept across calls, so ``for`` delays
  count from the first report that showed it and ``Finding.since`` is that moment);
- ``firing``: the fingerprints it returned last time (threshold hysteresis needs them);
- ``samples``: per rate rule and key, ``(collected_at, value)`` pairs within the rule's window.
  A sample is added once per report: a tick with the same report (same ``collected_at``) adds
  nothing; a report older than the last sample (a reset agent clock) starts the series over.

Silence: when an ``absence`` rule fires, only the absence findings are returned and the state is
returned unchanged. Findings from the stale report are dropped from the list (so the caller sees
them clear while the asset is silent) and come back, with their original ``since``, if the next
report still shows them. A measurement missing from the report (an unmounted filesystem, a
stopped probe) clears its findings and forgets its rate samples.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

from collector.domain import AssetContext, Finding, Severity
from collector.rules.measure import measurements
from collector.rules.model import AbsenceRule, RateRule, Rule, StateRule, ThresholdRule
from schoolops.wire import Report

MAX_SAMPLES = 720  # per rate rule and key; the rule's min_samples is at most this
Series = tuple[tuple[float, float], ...]  # ((collected_at, value), ...), oldest first


@dataclass(frozen=True)
class AssetRuleState:
    """What evaluation remembers about one asset between calls; ``AssetRuleState()`` is the start.

    Treat it as immutable: evaluation returns a new one and never changes the one it was given.
    """

    pending: Mapping[str, float] = field(default_factory=dict)  # fingerprint → since
    firing: frozenset[str] = frozenset()  # fingerprints returned by the last evaluation
    samples: Mapping[str, Series] = field(default_factory=dict)  # rate rules: fingerprint → series
    # rate rules: fingerprint → (target, seconds until it) fitted to that series, so that evaluating the
    # same report again (a periodic tick) does not fit the same samples again
    estimates: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Condition:
    """A rule's condition holding for one key: with what severity, value and compared level."""

    key: str
    severity: Severity
    value: float
    level: float


def fingerprint(rule: str, asset: str, key: str) -> str:
    """The same string as ``Finding.fingerprint``."""
    return f"{rule}|{asset}|{key}"


def evaluate_asset(
    rules: list[Rule],
    asset: AssetContext,
    report: Report | None,
    received_at: float | None,
    previous: AssetRuleState,
    now: float,
) -> tuple[AssetRuleState, list[Finding]]:
    """The findings active at ``now`` for ``asset`` under ``rules``, and the state for next time.

    ``report`` is the asset's latest report (None if it never reported) and ``received_at`` the
    collector's time it arrived; ``rules`` are the asset's own (``RuleSet.rules_for``).
    """
    silent = [
        finding
        for rule in rules
        if isinstance(rule, AbsenceRule) and (finding := _absence(rule, asset, report, received_at, now)) is not None
    ]
    if silent:
        return previous, silent
    measured = measurements(report) if report is not None else {}
    pending: dict[str, float] = {}
    samples: dict[str, Series] = {}
    estimates: dict[str, tuple[float, float | None]] = {}
    findings: list[Finding] = []
    for rule in rules:
        if isinstance(rule, AbsenceRule):
            continue
        values = measured.get(rule.metric)
        if not values:  # nothing measured: no condition holds, and a rate rule's samples are forgotten
            continue
        prefix = fingerprint(rule.id, asset.name, "")
        if isinstance(rule, ThresholdRule):
            was_firing = {key for key, _ in values if prefix + key in previous.firing} if previous.firing else set()
            conditions = _threshold(rule, values, was_firing)
        elif isinstance(rule, StateRule):
            conditions = _state(rule, values)
        else:
            assert report is not None or not values
            collected_at = report.collected_at if report is not None else 0.0
            history = {key: previous.samples.get(prefix + key, ()) for key, _ in values}
            fitted = {key: previous.estimates.get(prefix + key) for key, _ in values}
            conditions, series, etas = _rate(rule, values, collected_at, history, fitted)
            samples.update((prefix + key, s) for key, s in series.items())
            estimates.update((prefix + key, e) for key, e in etas.items())
        for condition in conditions:
            fp = prefix + condition.key
            since = previous.pending.get(fp, now)
            pending[fp] = since
            if rule.for_ <= 0 or now - since >= rule.for_:
                findings.append(_finding(rule, asset, condition, since))
    firing = frozenset(f.fingerprint for f in findings)
    return AssetRuleState(pending=pending, firing=firing, samples=samples, estimates=estimates), findings


def _finding(rule: Rule, asset: AssetContext, condition: _Condition, since: float) -> Finding:
    return Finding(
        rule=rule.id,
        asset=asset.name,
        key=condition.key,
        type=rule.type,
        severity=condition.severity,
        value=condition.value,
        summary=rule.describe(
            asset=asset.name, key=condition.key, value=condition.value, level=condition.level,
            severity=condition.severity,
        ),
        since=since,
    )


def _absence(
    rule: AbsenceRule, asset: AssetContext, report: Report | None, received_at: float | None, now: float
) -> Finding | None:
    """Silent for more than ``intervals`` × the report interval; since = the last report's arrival."""
    if report is None or received_at is None:
        return None
    limit = rule.intervals * report.interval
    silent_for = now - received_at
    if silent_for <= limit:
        return None
    return _finding(rule, asset, _Condition("", rule.base_severity, silent_for, limit), received_at)


def _threshold(rule: ThresholdRule, values: list[tuple[str, float]], firing: set[str]) -> list[_Condition]:
    levels = rule.ordered_levels()
    conditions = []
    for key, value in values:
        reached = next(((severity, at) for severity, at in levels if rule.crosses(value, at)), None)
        if reached is not None:
            conditions.append(_Condition(key, reached[0], value, reached[1]))
        elif key in firing:
            # hysteresis: between recovery and the least severe level, a firing finding stays there
            recovery = rule.recovery_level()
            if value >= recovery if rule.direction == "above" else value <= recovery:
                least_severity, least = levels[-1]
                conditions.append(_Condition(key, least_severity, value, least))
    return conditions


def _state(rule: StateRule, values: list[tuple[str, float]]) -> list[_Condition]:
    conditions = []
    for key, value in values:
        severity = rule.severity_of(value)
        if severity is not None:
            conditions.append(_Condition(key, severity, value, value))
    return conditions


def _rate(
    rule: RateRule, values: list[tuple[str, float]], collected_at: float, history: Mapping[str, Series],
    fitted: Mapping[str, tuple[float, float | None] | None],
) -> tuple[list[_Condition], dict[str, Series], dict[str, tuple[float, float | None]]]:
    """Seconds until ``target`` at the least-squares rate over ``window``; holds when within ``predict``.

    ``fitted``: the (target, seconds) found last time for each key's series, reused when the series
    did not change (the same report again) and the target is the same."""
    conditions = []
    kept: dict[str, Series] = {}
    etas: dict[str, tuple[float, float | None]] = {}
    for key, value in values:
        before = history.get(key, ())
        series = _add_sample(before, collected_at, value, rule.window)
        kept[key] = series
        if len(series) < rule.min_samples:
            continue
        known = fitted.get(key)
        if series is before and known is not None and known[0] == rule.target:
            eta = known[1]
        else:
            eta = _time_to_target(series, rule.target)
        etas[key] = (rule.target, eta)
        if eta is not None and eta <= rule.predict:
            conditions.append(_Condition(key, rule.base_severity, eta, rule.target))
    return conditions, kept, etas


def _add_sample(series: Series, at: float, value: float, window: float) -> Series:
    if series and at == series[-1][0]:
        grown = series  # the same report again (a periodic tick): the same series object, unless the window shrank
    elif series and at < series[-1][0]:
        grown = ((at, value),)  # the agent's clock went back: start over
    else:
        grown = (*series, (at, value))
    cutoff = grown[-1][0] - window
    if grown[0][0] >= cutoff and len(grown) <= MAX_SAMPLES:
        return grown  # all within the window (samples are in time order): nothing to drop
    return tuple(sample for sample in grown if sample[0] >= cutoff)[-MAX_SAMPLES:]


def _time_to_target(series: Series, target: float) -> float | None:
    """Seconds from the latest sample until the fitted rate reaches ``target``; None if it never will."""
    origin = series[0][0]
    times = [t - origin for t, _ in series]
    values = [v for _, v in series]
    mean_t, mean_v = sum(times) / len(times), sum(values) / len(values)
    dt = [t - mean_t for t in times]
    spread = sum(map(operator.mul, dt, dt))
    if spread == 0:
        return None
    slope = sum(map(operator.mul, dt, [v - mean_v for v in values])) / spread
    if slope == 0:
        return None
    eta = (target - values[-1]) / slope
    return eta if eta >= 0 else None
