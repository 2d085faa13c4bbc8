"""Flap detection: Icinga 2's weighted 20-change window with 30 % / 25 % hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.incidents.flapping import FlapState, flap_percent, observe


def run(observations: list[bool], start: FlapState | None = None) -> list[FlapState]:
    states, state = [], start or FlapState()
    for problem in observations:
        state = observe(state, problem)
        states.append(state)
    return states


@pytest.mark.parametrize("problem", [True, False])
def test_a_steady_state_never_flaps(problem: bool) -> None:
    states = run([problem] * 50)
    assert not any(s.flapping for s in states)
    assert all(s.percent == 0.0 for s in states)


def test_alternating_every_observation_flaps_at_the_seventh_observation() -> None:
    states = run([i % 2 == 1 for i in range(30)])
    # 5 changes at the newest positions: 100 × (5 × 0.8 + 0.02 × (15+…+19)) / 20 = 28.5 % — not yet.
    assert states[5].percent == pytest.approx(28.5) and not states[5].flapping
    # 6 changes: 100 × (6 × 0.8 + 0.02 × (14+…+19)) / 20 = 33.9 % > 30 % — flapping from here on.
    assert states[6].percent == pytest.approx(33.9) and states[6].flapping
    assert [s.flapping for s in states].index(True) == 6
    assert all(s.flapping for s in states[6:])
    # Twenty changes is the maximum: every weight, 0.8 to 1.18, sums to 19.8 → 99 %.
    assert states[-1].percent == pytest.approx(99.0)


def test_after_it_settles_it_stops_below_the_low_threshold_and_holds_in_between() -> None:
    flapping = run([i % 2 == 1 for i in range(21)])[-1]
    assert flapping.flapping and flapping.percent == pytest.approx(99.0)
    settling = run([flapping.history[-1]] * 20, start=flapping)  # the state it settles in
    # With c changes left in the oldest positions, percent = 4c + 0.05 c (c − 1).
    by_changes_left = {20 - (n + 1): s for n, s in enumerate(settling)}
    assert by_changes_left[7].percent == pytest.approx(30.1) and by_changes_left[7].flapping
    assert by_changes_left[6].percent == pytest.approx(25.5) and by_changes_left[6].flapping  # in between: keeps the flag
    assert by_changes_left[5].percent == pytest.approx(21.0) and not by_changes_left[5].flapping
    assert not any(s.flapping for s in settling[settling.index(by_changes_left[5]):])
    assert settling[-1].percent == 0.0


def test_between_the_thresholds_a_calm_fault_does_not_start_flapping() -> None:
    state = run([False, True, False, True, False, True])[-1]  # 5 changes: 28.5 %
    assert 25.0 < state.percent < 30.0 and not state.flapping


def test_a_change_counts_more_at_the_newest_position_than_at_the_oldest() -> None:
    newest = flap_percent([False] * 20 + [True])
    oldest = flap_percent([False] + [True] * 20)
    assert newest == pytest.approx(100 * 1.18 / 20)
    assert oldest == pytest.approx(100 * 0.8 / 20)
    assert newest > oldest


def test_only_the_last_twenty_one_states_count() -> None:
    assert flap_percent([True, False] + [False] * 20) == flap_percent([False] * 21) == 0.0


def test_thresholds_are_parameters_and_must_be_ordered() -> None:
    state = run([False, True])[-1]  # one change at the newest position: 5.9 %
    assert observe(state, False, high=5.0, low=2.0).flapping
    with pytest.raises(ValueError, match="low"):
        observe(FlapState(), True, high=20.0, low=25.0)


@given(st.lists(st.booleans(), max_size=60))
def test_history_is_bounded_and_percent_in_range(observations: list[bool]) -> None:
    state = FlapState()
    for problem in observations:
        previous, state = state, observe(state, problem)
        assert len(state.history) == min(len(previous.history) + 1, 21)
        assert state.history[-1] is problem
        assert 0.0 <= state.percent <= 99.0 + 1e-9
        if state.percent > 30.0:
            assert state.flapping
        if state.percent <= 25.0:
            assert not state.flapping
        if 25.0 < state.percent <= 30.0:
            assert state.flapping is previous.flapping
