"""Which escalation notifications are due: the default policies over time, restarts, holds, the security clock."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.domain import FaultType, Severity
from collector.incidents.lifecycle import IncidentState
from collector.notify.escalation import (
    Due,
    EscalationFacts,
    due,
    next_due_at,
    security_deadline,
    state_change_key,
)
from collector.notify.policy import Policies, Policy, SecurityClock, Step
from schoolops.units import Seconds

S = IncidentState
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
MIN, H = 60.0, 3600.0
POLICIES = Policies()
CLOCK = SecurityClock()
NONE: frozenset[str] = frozenset()


def facts(severity: Severity = Severity.P2, state: IncidentState = S.OPEN, *, started: float | None = T0,
          acked: float | None = None, resolved: float | None = None, owner: str | None = None, held: bool = False,
          type: FaultType = FaultType.NETWORK, critical: bool = False, reported: float | None = None) -> EscalationFacts:
    return EscalationFacts(incident_id=7, severity=severity, type=type, state=state, started_at=started,
                           acknowledged_at=acked, resolved_at=resolved, owner=owner, held=held,
                           critical_infrastructure=critical, security_reported_at=reported)


def policy(severity: Severity) -> Policy:
    return getattr(POLICIES, severity.label)  # type: ignore[no-any-return]


def keys(items: Iterable[Due]) -> set[str]:
    return {item.key for item in items}


def walk(f: EscalationFacts, timeline: list[tuple[float, set[str]]], done: frozenset[str] = NONE) -> dict[str, Due]:
    """Tick at each offset from T0, marking what was due as done; assert what is new at each tick."""
    sent: dict[str, Due] = {}
    for offset, expected in timeline:
        now = T0 + offset
        items = due(f, policy(f.severity), CLOCK, done, now)
        assert keys(items) == expected, f"at T0+{offset / MIN:g} min"
        done |= keys(items)
        sent.update({item.key: item for item in items})
    return sent


# --- the default P2 policy, unacknowledged ------------------------------------------------------------------

P2_UNACKNOWLEDGED = [
    (0, {"step:0"}),
    (4 * MIN, set()),
    (5 * MIN, {"step:1"}),
    (19 * MIN, set()),
    (20 * MIN, {"step:2"}),
    (30 * MIN, {"progress:1"}),
    (49 * MIN, set()),
    (50 * MIN, {"unacked:1"}),
    (60 * MIN, {"progress:2"}),
    (80 * MIN, {"unacked:2"}),
    (81 * MIN, set()),
]


def test_p2_pages_primary_then_backup_then_director_then_reminds_everyone() -> None:
    sent = walk(facts(), P2_UNACKNOWLEDGED)
    assert sent["step:0"].targets == ("primary",) and sent["step:0"].kind == "page"
    assert sent["step:1"].targets == ("backup",)
    assert sent["step:2"].targets == ("director",)
    assert sent["step:1"].reason == "step 2 of 3 of the P2 policy: backup after 5 min unacknowledged"
    assert sent["unacked:1"].targets == ("primary", "backup", "director") and sent["unacked:1"].kind == "reminder"
    assert sent["unacked:1"].due_at == T0 + 50 * MIN and sent["unacked:2"].due_at == T0 + 80 * MIN
    assert sent["progress:1"].targets == ("director",) and sent["progress:1"].kind == "progress"


def test_p1_tells_the_director_at_once() -> None:
    [first] = due(facts(Severity.P1), policy(Severity.P1), CLOCK, NONE, T0)
    assert (first.key, first.targets, first.due_at) == ("step:0", ("primary", "director"), T0)
    assert first.reason == "step 1 of 3 of the P1 policy: primary, director at once"


@pytest.mark.parametrize("severity", [Severity.P3, Severity.P4])
def test_general_faults_wait_for_grouping_then_repeat_every_4_hours(severity: Severity) -> None:
    sent = walk(facts(severity), [
        (29, set()),
        (30, {"step:0"}),
        (30 * MIN, set()),  # no progress reports for general faults
        (4 * H + 29, set()),
        (4 * H + 30, {"unacked:1"}),
    ])
    assert sent["step:0"].reason == f"step 1 of 1 of the {severity.label} policy: primary after the 30 s grouping wait"
    assert sent["unacked:1"].targets == ("primary",)


# --- acknowledgement ----------------------------------------------------------------------------------------

def test_acknowledged_at_7_min_stops_the_steps_and_reminds_the_owner_after_4_hours() -> None:
    ack = T0 + 7 * MIN
    acked = facts(state=S.ACKNOWLEDGED, acked=ack, owner="li.wei")
    done = frozenset({"step:0", "step:1"})
    sent = walk(acked, [
        (20 * MIN, set()),  # no step:2
        (30 * MIN, {"progress:1"}),  # the director's report goes on until resolved
        (50 * MIN, set()),  # no unacknowledged reminder
        (4 * H, {"progress:8"}),
        (7 * MIN + 4 * H - 1, set()),
        (7 * MIN + 4 * H, {"owner:1"}),
        (7 * MIN + 8 * H, {"owner:2", "progress:16"}),
    ], done)
    assert sent["owner:1"].targets == ("person:li.wei",) and sent["owner:1"].kind == "reminder"
    assert sent["owner:1"].due_at == ack + 4 * H


def test_acknowledged_before_step_0_went_out_sends_nothing() -> None:
    f = facts(Severity.P3, S.ACKNOWLEDGED, acked=T0 + 10, owner="li.wei")
    assert due(f, policy(Severity.P3), CLOCK, NONE, T0 + 30) == []


def test_an_acknowledged_incident_nobody_owns_reminds_the_primary() -> None:
    f = facts(state=S.ACKNOWLEDGED, acked=T0)
    [item] = [d for d in due(f, policy(Severity.P2), CLOCK, NONE, T0 + 4 * H) if d.key == "owner:1"]
    assert item.targets == ("primary",)


def test_state_change_key() -> None:
    assert state_change_key(S.ACKNOWLEDGED) == "progress:state:acknowledged"
    assert len({state_change_key(s) for s in S}) == len(S)


# --- holds, resolution --------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", [S.OPEN, S.ACKNOWLEDGED])
@pytest.mark.parametrize("severity", [Severity.P1, Severity.P2, Severity.P3, Severity.P4])
@pytest.mark.parametrize("offset", [0, 5 * MIN, 50 * MIN, 5 * H])
def test_held_nothing_is_due(state: IncidentState, severity: Severity, offset: float) -> None:
    f = facts(severity, state, acked=T0, owner="li.wei", held=True)
    assert due(f, policy(severity), CLOCK, NONE, T0 + offset) == []
    assert next_due_at(f, policy(severity), CLOCK, NONE, T0 + offset) is None


def test_never_notified_nothing_is_due() -> None:
    f = facts(Severity.P1, started=None, type=FaultType.SECURITY)
    assert due(f, policy(Severity.P1), CLOCK, NONE, T0 + H) == []
    assert next_due_at(f, policy(Severity.P1), CLOCK, NONE, T0 + H) is None
    assert security_deadline(f, CLOCK) is None


def test_when_a_hold_lifts_the_missed_steps_go_out_once_and_the_latest_reminder_only() -> None:
    held = facts(held=True)
    assert due(held, policy(Severity.P2), CLOCK, frozenset({"step:0"}), T0 + 2 * H) == []
    walk(facts(), [(2 * H, {"step:1", "step:2", "unacked:3", "progress:4"}), (2 * H + MIN, set())],
         frozenset({"step:0"}))


@pytest.mark.parametrize("state", [S.RESOLVED, S.REVIEWED, S.CLOSED])
@pytest.mark.parametrize("severity", [Severity.P1, Severity.P2])
def test_resolved_major_sends_the_closing_summary_only(state: IncidentState, severity: Severity) -> None:
    f = facts(severity, state, acked=T0 + MIN, resolved=T0 + 45 * MIN, owner="li.wei")
    [summary] = due(f, policy(severity), CLOCK, NONE, T0 + 3 * H)
    assert (summary.key, summary.kind, summary.targets, summary.due_at) == (
        "summary", "summary", ("director",), T0 + 45 * MIN)
    assert due(f, policy(severity), CLOCK, frozenset({"summary"}), T0 + 3 * H) == []
    assert next_due_at(f, policy(severity), CLOCK, frozenset({"summary"}), T0 + 3 * H) is None


@pytest.mark.parametrize("severity", [Severity.P3, Severity.P4])
def test_resolved_general_fault_sends_nothing(severity: Severity) -> None:
    f = facts(severity, S.RESOLVED, resolved=T0 + 45 * MIN)
    assert due(f, policy(severity), CLOCK, NONE, T0 + 3 * H) == []


def test_progress_every_30_min_while_open_stops_at_resolution() -> None:
    walk(facts(), [(30 * MIN, {"step:0", "step:1", "step:2", "progress:1"})])
    resolved = facts(state=S.RESOLVED, resolved=T0 + 45 * MIN)
    assert keys(due(resolved, policy(Severity.P2), CLOCK, frozenset({"progress:1"}), T0 + 2 * H)) == {"summary"}
    assert next_due_at(resolved, policy(Severity.P2), CLOCK, frozenset({"progress:1", "summary"}), T0 + 2 * H) is None


# --- restart ------------------------------------------------------------------------------------------------

def test_a_restart_after_2_hours_down_sends_each_missed_step_once_and_only_the_latest_reminder() -> None:
    # step:0 went out at T0; the collector died at T0+1 min and came back at T0+2 h 1 min.
    sent = walk(facts(), [
        (2 * H + MIN, {"step:1", "step:2", "unacked:3", "progress:4"}),  # not unacked:1, 2 nor progress:1..3
        (2 * H + MIN, set()),  # a second collector, or the same tick again: nothing new
        (2 * H + 20 * MIN, {"unacked:4"}),
    ], frozenset({"step:0"}))
    assert sent["step:1"].due_at == T0 + 5 * MIN  # late, with its own time
    assert sent["unacked:3"].due_at == T0 + 110 * MIN


def test_next_due_at_lets_the_scheduler_sleep_until_the_next_step() -> None:
    p2 = policy(Severity.P2)
    assert next_due_at(facts(), p2, CLOCK, frozenset({"step:0"}), T0) == T0 + 5 * MIN
    done = frozenset({"step:0", "step:1", "step:2"})
    assert next_due_at(facts(), p2, CLOCK, done, T0 + 20 * MIN) == T0 + 30 * MIN
    assert next_due_at(facts(), p2, CLOCK, done | {"progress:1"}, T0 + 30 * MIN) == T0 + 50 * MIN


# --- the security clock -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("critical", "deadline"), [(False, 4 * H), (True, 1 * H)])
def test_security_clock_reminds_the_director_until_reported(critical: bool, deadline: float) -> None:
    f = facts(Severity.P2, type=FaultType.SECURITY, critical=critical)
    assert security_deadline(f, CLOCK) == T0 + deadline
    late = deadline + 5 * H  # a restart long after the deadline: the latest reminder only
    sent = walk(f, [
        (0, {"step:0", "security:0"}),
        (29 * MIN, {"step:1", "step:2"}),
        (30 * MIN, {"security:1", "progress:1"}),
        (late, {f"security:{late // (30 * MIN):.0f}", f"unacked:{(late - 20 * MIN) // (30 * MIN):.0f}",
                f"progress:{late // (30 * MIN):.0f}"}),
    ])
    first = sent["security:0"]
    assert (first.kind, first.targets, first.due_at) == ("security_clock", ("director",), T0)
    assert f"within {deadline / H:.0f} h" in first.reason and "left" in first.reason
    assert ("critical infrastructure" in first.reason) is critical
    assert "overdue since" in sent[f"security:{late // (30 * MIN):.0f}"].reason
    reported = facts(Severity.P2, type=FaultType.SECURITY, critical=critical, reported=T0 + 40 * MIN)
    assert not any(d.kind == "security_clock" for d in due(reported, policy(Severity.P2), CLOCK, NONE, T0 + 2 * H))


def test_security_clock_outlives_the_fault_until_the_report_is_sent() -> None:
    f = facts(Severity.P1, S.RESOLVED, type=FaultType.SECURITY, resolved=T0 + 20 * MIN)
    assert keys(due(f, policy(Severity.P1), CLOCK, frozenset({"security:0"}), T0 + 35 * MIN)) == {"security:1", "summary"}


@pytest.mark.parametrize("severity", [Severity.P3, Severity.P4])
def test_no_security_clock_below_p2(severity: Severity) -> None:
    f = facts(severity, type=FaultType.SECURITY)
    assert security_deadline(f, CLOCK) is None
    assert not any(d.kind == "security_clock" for d in due(f, policy(severity), CLOCK, NONE, T0 + H))


# --- properties ---------------------------------------------------------------------------------------------

SERIES = ("unacked", "owner", "progress", "security")
KEY_UNIVERSE = (["summary"] + [f"step:{i}" for i in range(4)] + [f"{s}:{n}" for s in SERIES for n in range(12)]
                + [state_change_key(s) for s in S])


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    afters = sorted(draw(st.lists(st.integers(0, 2 * 3600), min_size=1, max_size=4)))
    targets = st.lists(st.sampled_from(["primary", "backup", "director", "role:network", "person:li.wei"]),
                       min_size=1, max_size=3)
    interval = st.none() | st.integers(60, 6 * 3600).map(Seconds)
    return Policy(steps=[Step(after=Seconds(a), notify=draw(targets)) for a in afters],
                  group_wait=Seconds(draw(st.integers(0, 300))), unacked_reminder=draw(interval),
                  owner_reminder=draw(interval), progress_interval=draw(interval), closing_summary=draw(st.booleans()))


offsets = st.floats(0, 3 * 86400, allow_nan=False)
maybe_time = st.none() | offsets.map(lambda o: T0 + o)


@st.composite
def escalation_facts(draw: st.DrawFn) -> EscalationFacts:
    return EscalationFacts(
        incident_id=draw(st.integers(1, 10**6)), severity=draw(st.sampled_from(list(Severity)[:4])),
        type=draw(st.sampled_from(FaultType)), state=draw(st.sampled_from(S)), started_at=draw(maybe_time),
        acknowledged_at=draw(maybe_time), resolved_at=draw(maybe_time), owner=draw(st.none() | st.just("li.wei")),
        held=draw(st.booleans()), critical_infrastructure=draw(st.booleans()), security_reported_at=draw(maybe_time),
    )


clocks = st.builds(SecurityClock, deadline=st.integers(600, 8 * 3600).map(Seconds),
                   critical_infrastructure_deadline=st.integers(600, 3600).map(Seconds),
                   reminder_interval=st.integers(60, 3 * 3600).map(Seconds))
inputs = st.tuples(escalation_facts(), st.one_of(st.sampled_from([policy(s) for s in list(Severity)[:4]]), policies()),
                   clocks, st.frozensets(st.sampled_from(KEY_UNIVERSE), max_size=12), offsets.map(lambda o: T0 + o))
KEY = re.compile(r"^(summary|step:\d+|(unacked|owner|progress|security):\d+)$")


@settings(max_examples=400)
@given(inputs)
def test_due_never_returns_done_keys_nor_the_future_and_is_stable(case: tuple) -> None:  # type: ignore[type-arg]
    f, p, clock, done, now = case
    items = due(f, p, clock, done, now)
    assert not keys(items) & done
    assert all(item.due_at <= now for item in items)
    assert len(keys(items)) == len(items)
    assert all(KEY.match(item.key) and len(item.key) <= 64 and item.targets and item.reason for item in items)
    assert due(f, p, clock, done, now) == items
    for series in SERIES:  # the latest slot of a series only: no storm after a restart
        assert sum(item.key.startswith(f"{series}:") for item in items) <= 1


@settings(max_examples=400)
@given(inputs)
def test_marking_the_results_done_leaves_nothing_new_until_next_due_at(case: tuple) -> None:  # type: ignore[type-arg]
    f, p, clock, done, now = case
    done |= keys(due(f, p, clock, done, now))
    assert due(f, p, clock, done, now) == []
    later = next_due_at(f, p, clock, done, now)
    if later is None:
        assert due(f, p, clock, done, now + 30 * 86400) == []
        return
    assert later > now
    assert due(f, p, clock, done, max(now, math.nextafter(later, 0))) == []
    assert due(f, p, clock, done, later) != []


@settings(max_examples=200)
@given(st.sampled_from([policy(s) for s in list(Severity)[:4]]) | policies(),
       st.lists(st.floats(0, 6 * 3600, allow_nan=False), min_size=1, max_size=20))
def test_ticking_at_any_times_sends_every_passed_step_once_never_early(p: Policy, ticks: list[float]) -> None:
    f, done, sent = facts(), NONE, []
    for offset in sorted(ticks):
        items = due(f, p, CLOCK, done, T0 + offset)
        assert all(item.due_at <= T0 + offset for item in items)
        sent += [item.key for item in items]
        done |= keys(items)
    assert len(sent) == len(set(sent))
    last = T0 + max(ticks)
    assert {k for k in sent if k.startswith("step:")} == {
        f"step:{i}" for i, step in enumerate(p.steps) if T0 + p.group_wait + step.after <= last}
