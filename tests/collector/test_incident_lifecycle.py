"""The incident lifecycle: every transition allowed or refused, the major-fault close rule, the engine's decisions."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from collector.domain import Severity
from collector.incidents.lifecycle import (
    Action,
    IncidentFacts,
    IncidentState,
    TransitionRefused,
    allowed_actions,
    auto_resolve_due,
    next_state,
    should_reopen,
)

S = IncidentState
A = Action


def facts(state: IncidentState, severity: Severity = Severity.P3, *, rca: bool = True, measures: int = 1,
          active: int = 0) -> IncidentFacts:
    return IncidentFacts(state=state, severity=severity, has_rca=rca, measures=measures, faults_active=active)


# (state, action) → target for an incident whose RCA and measures are in place, every severity.
ALLOWED_FOR_ALL = {
    (S.OPEN, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.OPEN, A.RESOLVE): S.RESOLVED,
    (S.ACKNOWLEDGED, A.RESOLVE): S.RESOLVED,
    (S.RESOLVED, A.REOPEN): S.OPEN,
    (S.RESOLVED, A.REVIEW): S.REVIEWED,
    (S.REVIEWED, A.CLOSE): S.CLOSED,
}
ALLOWED_FOR_GENERAL_ONLY = {(S.RESOLVED, A.CLOSE): S.CLOSED}

# Refused whatever the facts, with words the refusal must contain.
REFUSED = [
    (S.ACKNOWLEDGED, A.ACKNOWLEDGE, "already acknowledged"),
    (S.RESOLVED, A.ACKNOWLEDGE, "cannot acknowledge a resolved incident"),
    (S.REVIEWED, A.ACKNOWLEDGE, "cannot acknowledge a reviewed incident"),
    (S.CLOSED, A.ACKNOWLEDGE, "cannot acknowledge a closed incident: closed is final"),
    (S.RESOLVED, A.RESOLVE, "already resolved"),
    (S.REVIEWED, A.RESOLVE, "cannot resolve a reviewed incident"),
    (S.CLOSED, A.RESOLVE, "cannot resolve a closed incident"),
    (S.OPEN, A.REOPEN, "cannot reopen an open incident: it is still open"),
    (S.ACKNOWLEDGED, A.REOPEN, "cannot reopen an acknowledged incident"),
    (S.REVIEWED, A.REOPEN, "a new incident opens instead"),
    (S.CLOSED, A.REOPEN, "cannot reopen a closed incident"),
    (S.OPEN, A.REVIEW, "cannot review an open incident: resolve it first"),
    (S.ACKNOWLEDGED, A.REVIEW, "resolve it first"),
    (S.REVIEWED, A.REVIEW, "already reviewed"),
    (S.CLOSED, A.REVIEW, "cannot review a closed incident"),
    (S.OPEN, A.CLOSE, "cannot close an open incident: resolve it first"),
    (S.ACKNOWLEDGED, A.CLOSE, "resolve it first"),
    (S.CLOSED, A.CLOSE, "already closed"),
]


def test_the_tables_cover_every_state_and_action() -> None:
    covered = set(ALLOWED_FOR_ALL) | set(ALLOWED_FOR_GENERAL_ONLY) | {(s, a) for s, a, _ in REFUSED}
    assert covered == {(s, a) for s in S for a in A}


@pytest.mark.parametrize("severity", list(Severity))
@pytest.mark.parametrize(("state", "action"), list(ALLOWED_FOR_ALL))
def test_allowed_transitions_lead_where_the_lifecycle_says(severity: Severity, state: IncidentState, action: Action) -> None:
    assert next_state(facts(state, severity), action) is ALLOWED_FOR_ALL[(state, action)]


@pytest.mark.parametrize("severity", [Severity.P3, Severity.P4, Severity.INFO])
def test_a_general_incident_closes_from_resolved_without_a_review(severity: Severity) -> None:
    assert next_state(facts(S.RESOLVED, severity, rca=False, measures=0), A.CLOSE) is S.CLOSED


@pytest.mark.parametrize("severity", [Severity.P1, Severity.P2])
def test_a_major_incident_must_be_reviewed_before_it_closes(severity: Severity) -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_state(facts(S.RESOLVED, severity), A.CLOSE)
    assert refused.value.reason == f"a {severity.label} incident cannot be closed before it is reviewed: review it first"


@pytest.mark.parametrize("severity", list(Severity))
@pytest.mark.parametrize(("state", "action", "words"), REFUSED)
def test_refused_transitions_name_the_current_state(severity: Severity, state: IncidentState, action: Action, words: str) -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_state(facts(state, severity), action)
    assert words in refused.value.reason
    assert str(refused.value) == refused.value.reason
    assert (refused.value.state, refused.value.action) == (state, action)


def test_closing_a_p2_without_an_rca_or_a_measure_is_refused_with_what_to_do() -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_state(facts(S.REVIEWED, Severity.P2, rca=False, measures=0), A.CLOSE)
    assert refused.value.reason == (
        "a P2 incident cannot be closed without a root-cause analysis and at least one preventive measure "
        "(with an owner and a due date): add them with `schoolops incidents rca <id>` (or POST /api/v1/incidents/<id>/rca)"
    )


def test_closing_a_p2_with_an_rca_but_no_measure_is_refused() -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_state(facts(S.REVIEWED, Severity.P2, rca=True, measures=0), A.CLOSE)
    assert "without at least one preventive measure" in refused.value.reason
    assert "root-cause analysis" not in refused.value.reason
    assert "add it with" in refused.value.reason


def test_closing_a_p2_with_an_rca_and_a_measure_closes() -> None:
    assert next_state(facts(S.REVIEWED, Severity.P2, rca=True, measures=1), A.CLOSE) is S.CLOSED


@pytest.mark.parametrize("severity", [Severity.P1, Severity.P2])
def test_a_major_incident_cannot_be_reviewed_without_an_rca(severity: Severity) -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_state(facts(S.RESOLVED, severity, rca=False), A.REVIEW)
    assert refused.value.reason.startswith(f"a {severity.label} incident cannot be reviewed without a root-cause analysis")


def test_a_general_incident_may_be_reviewed_without_an_rca() -> None:
    assert next_state(facts(S.RESOLVED, Severity.P4, rca=False, measures=0), A.REVIEW) is S.REVIEWED


def test_a_person_may_resolve_while_faults_are_still_active() -> None:
    assert next_state(facts(S.ACKNOWLEDGED, Severity.P1, active=3), A.RESOLVE) is S.RESOLVED


@pytest.mark.parametrize(
    ("given_facts", "expected"),
    [
        (facts(S.OPEN), [A.ACKNOWLEDGE, A.RESOLVE]),
        (facts(S.ACKNOWLEDGED), [A.RESOLVE]),
        (facts(S.RESOLVED, Severity.P3), [A.REOPEN, A.REVIEW, A.CLOSE]),
        (facts(S.RESOLVED, Severity.P2), [A.REOPEN, A.REVIEW]),
        (facts(S.RESOLVED, Severity.P2, rca=False), [A.REOPEN]),
        (facts(S.REVIEWED, Severity.P1), [A.CLOSE]),
        (facts(S.REVIEWED, Severity.P1, measures=0), []),
        (facts(S.CLOSED), []),
    ],
)
def test_allowed_actions(given_facts: IncidentFacts, expected: list[Action]) -> None:
    assert allowed_actions(given_facts) == expected


@pytest.mark.parametrize(
    ("state", "active", "cleared_at", "now", "due"),
    [
        (S.OPEN, 0, 100.0, 400.0, True),  # quiet for exactly the quiet period
        (S.ACKNOWLEDGED, 0, 100.0, 500.0, True),
        (S.OPEN, 0, 100.0, 399.9, False),  # not quiet long enough
        (S.OPEN, 1, 100.0, 10_000.0, False),  # a fault still fires
        (S.OPEN, 0, None, 10_000.0, False),  # never cleared
        (S.RESOLVED, 0, 100.0, 10_000.0, False),  # resolved already
        (S.REVIEWED, 0, 100.0, 10_000.0, False),
        (S.CLOSED, 0, 100.0, 10_000.0, False),
    ],
)
def test_auto_resolve_due(state: IncidentState, active: int, cleared_at: float | None, now: float, due: bool) -> None:
    assert auto_resolve_due(state, active, cleared_at, now, quiet_period=300.0) is due


@pytest.mark.parametrize(
    ("state", "resolved_at", "now", "reopen"),
    [
        (S.RESOLVED, 1000.0, 1000.0, True),
        (S.RESOLVED, 1000.0, 4600.0, True),  # exactly at the end of the reopen window
        (S.RESOLVED, 1000.0, 4600.1, False),  # too late: a new incident opens
        (S.RESOLVED, None, 1000.0, False),
        (S.REVIEWED, 1000.0, 1001.0, False),  # a reviewed incident never reopens
        (S.CLOSED, 1000.0, 1001.0, False),
        (S.OPEN, 1000.0, 1001.0, False),  # still open: the fault joins it, nothing to reopen
        (S.ACKNOWLEDGED, 1000.0, 1001.0, False),
    ],
)
def test_should_reopen(state: IncidentState, resolved_at: float | None, now: float, reopen: bool) -> None:
    assert should_reopen(state, resolved_at, now, reopen_window=3600.0) is reopen


class IncidentLifecycle(RuleBasedStateMachine):
    """Random actions by people, interleaved with RCA, measures, severity changes and faults."""

    @initialize(severity=st.sampled_from(Severity))
    def open_incident(self, severity: Severity) -> None:
        self.facts = facts(S.OPEN, severity, rca=False, measures=0, active=1)
        self.visited: list[IncidentState] = [S.OPEN]

    @rule(action=st.sampled_from(Action))
    def act(self, action: Action) -> None:
        before = self.facts
        try:
            after = next_state(before, action)
        except TransitionRefused as refused:
            assert refused.reason and refused.state is before.state
            assert action not in allowed_actions(before)
            return
        assert action in allowed_actions(before)
        assert before.state is not S.CLOSED, "closed is final"
        if action is Action.REOPEN:
            assert before.state is S.RESOLVED
        if after is S.CLOSED and before.severity.is_major:
            assert before.state is S.REVIEWED and before.has_rca and before.measures >= 1
        if after is S.REVIEWED and before.severity.is_major:
            assert before.has_rca
        self.facts = dataclasses.replace(before, state=after)
        self.visited.append(after)

    @rule()
    def write_rca(self) -> None:
        self.facts = dataclasses.replace(self.facts, has_rca=True)

    @rule()
    def record_measure(self) -> None:
        self.facts = dataclasses.replace(self.facts, measures=self.facts.measures + 1)

    @rule(severity=st.sampled_from(Severity))
    def reclassify(self, severity: Severity) -> None:
        self.facts = dataclasses.replace(self.facts, severity=severity)

    @rule(active=st.integers(min_value=0, max_value=3))
    def faults_change(self, active: int) -> None:
        self.facts = dataclasses.replace(self.facts, faults_active=active)

    @invariant()
    def closed_is_absorbing(self) -> None:
        if S.CLOSED in getattr(self, "visited", []):
            assert self.visited[self.visited.index(S.CLOSED):] == [S.CLOSED]
            assert allowed_actions(self.facts) == []


TestIncidentLifecycle = IncidentLifecycle.TestCase
TestIncidentLifecycle.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


@given(
    state=st.sampled_from(IncidentState), severity=st.sampled_from(Severity), rca=st.booleans(),
    measures=st.integers(min_value=-2, max_value=5), active=st.integers(min_value=-1, max_value=5),
    action=st.sampled_from(Action),
)
def test_next_state_only_ever_raises_transition_refused(
    state: IncidentState, severity: Severity, rca: bool, measures: int, active: int, action: Action
) -> None:
    try:
        result = next_state(facts(state, severity, rca=rca, measures=measures, active=active), action)
    except TransitionRefused as refused:
        assert refused.reason.strip()
    else:
        assert isinstance(result, IncidentState)
