"""Which escalation notifications are due now: a pure function of an incident's facts, its policy and ``now``.

No I/O, no clock reads. The shell records each key it sends with compare-and-set (one row per
incident and key in ``escalation_steps``) and passes the recorded keys back as ``done``; ``due``
never returns a done key, so a restart, a second collector or a repeated tick sends nothing twice.

Semantics (times in unix seconds; ``start`` is ``facts.started_at``, the first notify decision):

- **Nothing before the start.** ``started_at`` None means the incident never notified (held from
  the beginning): nothing is due. Steps and series count from ``started_at``. The engine keeps it
  through holds, so when a hold lifts the steps missed meanwhile go out once (catch-up, below). A
  caller that moves ``started_at`` must clear the incident's done keys in the same transaction (as
  REOPEN does): reminder numbers count from the start, and a number already done is never resent.
- **Held** (maintenance, flapping, consequence): pages, reminders and progress reports pause. The
  closing summary and the security reporting clock are not paused: they finish what already began.
- **Steps** ``step:I``: step I is due at ``start + group_wait + step.after`` while the incident is
  OPEN. Once acknowledged no further step is due; acknowledged before step 0 went out, nothing is.
- **Catch-up**: a step whose time passed while the collector was down is due once, late. Of a
  repeating series (reminders, progress, security clock) only the latest slot that has passed is
  due, never the ones before it: no storm after a restart.
- **Unacknowledged reminder** ``unacked:N`` (kind "reminder"): while OPEN, every
  ``unacked_reminder`` after the last step's time, to the union of all the steps' targets.
- **Owner reminder** ``owner:N`` (kind "reminder"): while ACKNOWLEDGED, every ``owner_reminder``
  after ``acknowledged_at``, to ``person:<owner>`` (``primary`` when nobody owns it).
- **Progress** ``progress:N``: with ``progress_interval``, while OPEN or ACKNOWLEDGED, to the
  director at ``start + N * interval``. The shell also reports each state change; it records those
  under ``state_change_key(state)`` so they are deduplicated the same way.
- **Summary** ``summary``: with ``closing_summary``, once, when RESOLVED, REVIEWED or CLOSED.
- **Security clock** ``security:N`` (kind "security_clock"): a SECURITY incident of P1/P2 must be
  reported upward by ``security_deadline``; the director is reminded at the start and every
  ``reminder_interval`` until ``security_reported_at`` is set, also after resolution (resolving the
  fault does not discharge the duty to report it).
- **Resolved**: otherwise nothing: no steps, reminders or progress.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from collector.domain import FaultType, Severity
from collector.incidents.lifecycle import IncidentState
from collector.notify.policy import Policy, SecurityClock

DueKind = Literal["page", "reminder", "progress", "summary", "security_clock"]

_LIVE = frozenset({IncidentState.OPEN, IncidentState.ACKNOWLEDGED})
_FINISHED = frozenset({IncidentState.RESOLVED, IncidentState.REVIEWED, IncidentState.CLOSED})


@dataclass(frozen=True)
class EscalationFacts:
    """What escalation needs to know about one incident."""

    incident_id: int
    severity: Severity
    type: FaultType
    state: IncidentState
    started_at: float | None  # the first notify decision; None: never notified, nothing is due
    acknowledged_at: float | None
    resolved_at: float | None
    owner: str | None
    held: bool  # maintenance / flapping / consequence: pages, reminders and progress pause
    critical_infrastructure: bool = False
    security_reported_at: float | None = None  # when the upward security report was marked sent


@dataclass(frozen=True)
class Due:
    """One notification to send: ``key`` is unique per incident and the same on every call."""

    key: str  # "step:1", "unacked:2", "owner:1", "progress:3", "summary", "security:0"
    kind: DueKind
    targets: tuple[str, ...]  # primary, backup, director, role:X, person:X, channel:X
    due_at: float
    reason: str  # plain English, e.g. "step 2 of 3 of the P2 policy: backup after 5 min unacknowledged"


def due(facts: EscalationFacts, policy: Policy, security: SecurityClock, done: frozenset[str],
        now: float) -> list[Due]:
    """The notifications due at ``now`` and not in ``done``, earliest first (see the module docstring)."""
    items = [d for d in _schedule(facts, policy, security, done, now) if d.due_at <= now and d.key not in done]
    return sorted(items, key=lambda d: (d.due_at, d.key))


def next_due_at(facts: EscalationFacts, policy: Policy, security: SecurityClock, done: frozenset[str],
                now: float) -> float | None:
    """The earliest time after ``now`` at which ``due`` will return something new if the facts stay as
    they are, or None. What is due already (at or before ``now``) is ``due``'s answer, not this one."""
    times = [d.due_at for d in _schedule(facts, policy, security, done, now) if d.due_at > now and d.key not in done]
    return min(times, default=None)


def state_change_key(state: IncidentState) -> str:
    """The key under which the shell records the director's report of a change to ``state``."""
    return f"progress:state:{state.value}"


def security_deadline(facts: EscalationFacts, security: SecurityClock) -> float | None:
    """When a P1/P2 security incident must be reported upward; None for other incidents or before the start."""
    if facts.type is not FaultType.SECURITY or not facts.severity.is_major or facts.started_at is None:
        return None
    window = security.critical_infrastructure_deadline if facts.critical_infrastructure else security.deadline
    return facts.started_at + float(window)


def _schedule(facts: EscalationFacts, policy: Policy, security: SecurityClock, done: frozenset[str],
              now: float) -> Iterator[Due]:
    """Every candidate: all steps, and per series its latest passed slot and its next slot not done."""
    start = facts.started_at
    if start is None:
        return
    yield from _security(facts, security, start, done, now)
    if facts.state in _FINISHED:
        if policy.closing_summary:
            at = facts.resolved_at if facts.resolved_at is not None else start
            yield Due("summary", "summary", ("director",), at,
                      f"closing summary to the director: the {facts.severity.label} incident was resolved")
        return
    if facts.held:
        return
    label = facts.severity.label
    if policy.progress_interval is not None:
        for n, at in _series(start, float(policy.progress_interval), 1, "progress", done, now):
            yield Due(f"progress:{n}", "progress", ("director",), at,
                      f"progress report {n} to the director: the {label} incident is unresolved after {_span(at - start)}")
    if facts.state is IncidentState.OPEN:
        yield from _steps(facts, policy, start)
        if policy.unacked_reminder is not None:
            targets = _unique(t for step in policy.steps for t in step.notify)
            anchor = start + float(policy.group_wait) + float(policy.steps[-1].after)
            for n, at in _series(anchor, float(policy.unacked_reminder), 1, "unacked", done, now):
                yield Due(f"unacked:{n}", "reminder", targets, at,
                          f"reminder {n}: the {label} incident is still unacknowledged after {_span(at - start)}; "
                          f"reminding {', '.join(targets)}")
    elif facts.state is IncidentState.ACKNOWLEDGED and policy.owner_reminder is not None:
        acked = facts.acknowledged_at if facts.acknowledged_at is not None else start
        target = f"person:{facts.owner}" if facts.owner else "primary"
        for n, at in _series(acked, float(policy.owner_reminder), 1, "owner", done, now):
            yield Due(f"owner:{n}", "reminder", (target,), at,
                      f"owner reminder {n}: the {label} incident was acknowledged {_span(at - acked)} ago "
                      f"and is not resolved yet")


def _steps(facts: EscalationFacts, policy: Policy, start: float) -> Iterator[Due]:
    count, wait = len(policy.steps), float(policy.group_wait)
    for i, step in enumerate(policy.steps):
        after = float(step.after)
        if after == 0 and wait == 0:
            when = "at once"
        elif after == 0:
            when = f"after the {_span(wait)} grouping wait"
        else:
            when = f"after {_span(after)} unacknowledged"
        yield Due(f"step:{i}", "page", tuple(step.notify), start + wait + after,
                  f"step {i + 1} of {count} of the {facts.severity.label} policy: {', '.join(step.notify)} {when}")


def _security(facts: EscalationFacts, security: SecurityClock, start: float, done: frozenset[str],
              now: float) -> Iterator[Due]:
    deadline = security_deadline(facts, security)
    if deadline is None or facts.security_reported_at is not None:
        return
    hours = _span(deadline - start)
    scope = " for critical infrastructure" if facts.critical_infrastructure else ""
    for n, at in _series(start, float(security.reminder_interval), 0, "security", done, now):
        state = (f"overdue since {_clock(deadline)}" if at >= deadline
                 else f"due by {_clock(deadline)}, {_span(deadline - at)} left")
        yield Due(f"security:{n}", "security_clock", ("director",), at,
                  f"security clock: the {facts.severity.label} security incident must be reported upward within "
                  f"{hours}{scope}; the report is {state}")


def _series(anchor: float, interval: float, first: int, prefix: str, done: frozenset[str],
            now: float) -> Iterator[tuple[int, float]]:
    """Slots ``anchor + n * interval`` for n >= first: the latest one at or before ``now`` (only that
    one: a missed slot is superseded by the next), and the next one after ``now`` not in ``done``."""
    if interval <= 0:  # no repeats: the first slot only
        yield first, anchor + first * interval
        return
    n = math.floor((now - anchor) / interval) if now >= anchor else first - 1
    while n >= first and anchor + n * interval > now:  # guard against float rounding either way
        n -= 1
    while anchor + (n + 1) * interval <= now:
        n += 1
    if n >= first:
        yield n, anchor + n * interval
    upcoming = max(n + 1, first)
    for _ in range(len(done) + 1):  # a done key ahead of time (never in practice) is skipped
        if f"{prefix}:{upcoming}" not in done:
            break
        upcoming += 1
    yield upcoming, anchor + upcoming * interval


def _unique(targets: Iterator[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(targets))


def _span(seconds: float) -> str:
    """A duration as people say it: "30 s", "5 min", "4 h", "1 h 30 min", "2 d 3 h"."""
    total = max(0, round(seconds))
    parts = [(total // 86400, "d"), (total % 86400 // 3600, "h"), (total % 3600 // 60, "min"), (total % 60, "s")]
    words = [f"{value} {unit}" for value, unit in parts if value]
    return " ".join(words[:2]) if words else "0 s"


def _clock(at: float) -> str:
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):  # outside the calendar: say the number
        return f"unix time {at:.0f}"
