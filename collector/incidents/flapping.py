"""Flap detection the way Icinga 2 does it: a weighted share of state changes over the last 20 checks.

Icinga 2 (``Checkable::UpdateFlappingStatus``, lib/icinga/checkable-flapping.cpp) keeps one bit per
check, "did the state change at this check", for the last 20 checks, and computes::

    percent = 100 × Σ_{i=0..19} changed[i] × (0.8 + 0.02 × i) / 20

where i = 0 is the oldest of the 20 positions and i = 19 the newest: the oldest change weighs 0.8,
the newest 1.18, so recent changes count more. A checkable starts flapping when
percent > flapping_threshold_high (30 by default) and, once flapping, stays flapping while
percent > flapping_threshold_low (25): between the two thresholds the previous flag is kept.

Here the state is the last 21 observed states (problem or not), which hold exactly the last 20
changes. With fewer observations the changes seen so far sit in the newest positions, as they do in
Icinga's buffer; the first observation is not a change (Icinga compares it with its initial OK
state, which would count a first problem as a change).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

CHANGES = 20  # state changes considered
HISTORY = CHANGES + 1  # observed states that hold them
OLDEST_WEIGHT = 0.8
WEIGHT_STEP = 0.02  # the newest change weighs 0.8 + 19 × 0.02 = 1.18


@dataclass(frozen=True)
class FlapState:
    history: tuple[bool, ...] = ()  # last 21 observed states, oldest first (True = problem)
    flapping: bool = False
    percent: float = 0.0


def flap_percent(history: Sequence[bool]) -> float:
    """Icinga 2's weighted state-change percentage over the last 20 changes of ``history`` (0 to 99)."""
    states = list(history)[-HISTORY:]
    changes = [before != after for before, after in itertools.pairwise(states)]
    first = CHANGES - len(changes)  # position of the oldest change we have
    total = sum(OLDEST_WEIGHT + WEIGHT_STEP * (first + i) for i, changed in enumerate(changes) if changed)
    return 100.0 * total / CHANGES


def observe(state: FlapState, problem: bool, *, high: float = 30.0, low: float = 25.0) -> FlapState:
    """The flap state after one more observation: starts above ``high``, stops at or below ``low``."""
    if low > high:
        raise ValueError(f"flapping thresholds: low ({low}) must not exceed high ({high})")
    history = (*state.history, problem)[-HISTORY:]
    percent = flap_percent(history)
    flapping = percent > low if state.flapping else percent > high
    return FlapState(history=history, flapping=flapping, percent=percent)
