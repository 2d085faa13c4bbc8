"""The incident lifecycle: open → acknowledged → resolved → reviewed → closed, as pure functions.

``next_state`` says where an action by a person leads, or refuses with a reason that person can act
on. ``auto_resolve_due`` and ``should_reopen`` are the engine's decisions, also pure: the shell
passes in what it knows (state, counts, times and ``now``) and performs the result.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from collector import CollectorError
from collector.domain import Severity


class IncidentState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REVIEWED = "reviewed"
    CLOSED = "closed"


class Action(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    REVIEW = "review"
    CLOSE = "close"


@dataclass(frozen=True)
class IncidentFacts:
    """What the lifecycle needs to know about one incident."""

    state: IncidentState
    severity: Severity
    has_rca: bool  # a root-cause analysis has been written
    measures: int  # preventive measures recorded (each has an owner and a due date)
    faults_active: int  # faults of this incident still firing


class TransitionRefused(CollectorError):
    """An action that the incident's state or facts do not allow; ``reason`` says what to do instead."""

    def __init__(self, state: IncidentState, action: Action, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.action = action
        self.reason = reason


_OPEN_STATES = frozenset({IncidentState.OPEN, IncidentState.ACKNOWLEDGED})
_CLI = "`schoolops incidents rca <id>` (or POST /api/v1/incidents/<id>/rca)"  # where a person records the RCA and the measures

# Where each action may start, and where it leads when the guards (below) allow it.
_TRANSITIONS: dict[Action, tuple[frozenset[IncidentState], IncidentState]] = {
    Action.ACKNOWLEDGE: (frozenset({IncidentState.OPEN}), IncidentState.ACKNOWLEDGED),
    Action.RESOLVE: (_OPEN_STATES, IncidentState.RESOLVED),
    Action.REOPEN: (frozenset({IncidentState.RESOLVED}), IncidentState.OPEN),
    Action.REVIEW: (frozenset({IncidentState.RESOLVED}), IncidentState.REVIEWED),
    Action.CLOSE: (frozenset({IncidentState.RESOLVED, IncidentState.REVIEWED}), IncidentState.CLOSED),
}

# What to tell a person who tries an action from a state it does not start from.
_WRONG_STATE: dict[tuple[Action, IncidentState], str] = {
    (Action.ACKNOWLEDGE, IncidentState.ACKNOWLEDGED): "the incident is already acknowledged",
    (Action.RESOLVE, IncidentState.RESOLVED): "the incident is already resolved",
    (Action.REVIEW, IncidentState.REVIEWED): "the incident is already reviewed",
    (Action.CLOSE, IncidentState.CLOSED): "the incident is already closed",
}


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _wrong_state_reason(state: IncidentState, action: Action) -> str:
    if known := _WRONG_STATE.get((action, state)):
        return known
    prefix = f"cannot {action} {_article(state.value)} incident"
    if state is IncidentState.CLOSED:
        return f"{prefix}: closed is final; if the fault comes back, a new incident opens"
    if action is Action.ACKNOWLEDGE:
        return f"{prefix}: only an open incident can be acknowledged"
    if action is Action.RESOLVE:
        return f"{prefix}: it was resolved already"
    if action is Action.REOPEN and state is IncidentState.REVIEWED:
        return f"{prefix}: its review is done; if the fault comes back, a new incident opens instead"
    if action is Action.REOPEN:
        return f"{prefix}: it is still open"
    return f"{prefix}: resolve it first"  # review or close while open or acknowledged


def _guard(facts: IncidentFacts, action: Action) -> str | None:
    """The reason a major incident's review or close is refused, or None when it may go ahead."""
    if not facts.severity.is_major:
        return None
    label = facts.severity.label
    if action is Action.REVIEW and not facts.has_rca:
        return (
            f"a {label} incident cannot be reviewed without a root-cause analysis: add it with {_CLI}"
        )
    if action is Action.CLOSE:
        missing = []
        if not facts.has_rca:
            missing.append("a root-cause analysis")
        if facts.measures < 1:
            missing.append("at least one preventive measure (with an owner and a due date)")
        if missing:
            them = "it" if len(missing) == 1 else "them"
            return f"a {label} incident cannot be closed without {' and '.join(missing)}: add {them} with {_CLI}"
        if facts.state is not IncidentState.REVIEWED:
            return f"a {label} incident cannot be closed before it is reviewed: review it first"
    return None


def next_state(facts: IncidentFacts, action: Action) -> IncidentState:
    """The state ``action`` leads to from ``facts``; raises TransitionRefused with the reason otherwise.

    A manual resolve is allowed while faults are still active (a person may know better); the
    automatic resolve is ``auto_resolve_due``'s decision, not this function's.
    """
    sources, target = _TRANSITIONS[action]
    if facts.state not in sources:
        raise TransitionRefused(facts.state, action, _wrong_state_reason(facts.state, action))
    if refusal := _guard(facts, action):
        raise TransitionRefused(facts.state, action, refusal)
    return target


def allowed_actions(facts: IncidentFacts) -> list[Action]:
    """The actions ``next_state`` accepts for ``facts``, in the order of ``Action``."""
    allowed = []
    for action in Action:
        try:
            next_state(facts, action)
        except TransitionRefused:
            continue
        allowed.append(action)
    return allowed


def auto_resolve_due(
    state: IncidentState, faults_active: int, all_cleared_at: float | None, now: float, quiet_period: float
) -> bool:
    """True when an open or acknowledged incident has had no active fault for at least ``quiet_period`` s."""
    return (
        state in _OPEN_STATES
        and faults_active == 0
        and all_cleared_at is not None
        and now - all_cleared_at >= quiet_period
    )


def should_reopen(state: IncidentState, resolved_at: float | None, now: float, reopen_window: float) -> bool:
    """A fault of this incident fired again: reopen it, or (False) let a new incident open instead.

    Only a resolved incident reopens, and only within ``reopen_window`` seconds of its resolution;
    a reviewed or closed incident never reopens.
    """
    return state is IncidentState.RESOLVED and resolved_at is not None and now - resolved_at <= reopen_window
