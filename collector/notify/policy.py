"""Escalation policies as data, with the defaults the product starts from.

A policy is a list of steps, each ``after`` a delay counted from when the incident started to
notify (its first ``notify`` decision), naming whom to notify. Targets are words:
``primary`` / ``backup`` (today's on-call), ``director``, ``role:NAME``, ``person:ID`` or
``channel:ID`` (a group robot, say). Defaults (PRODUCT.md):

- P1/P2: on-call primary at once → backup after 5 min → director after another 15 min, while
  unacknowledged; P1 also tells the director at once. Unacknowledged: everyone in the chain is
  reminded every 30 min. The director gets a progress report every 30 min until resolved, and a
  closing summary.
- P3/P4: on-call primary after a 30 s grouping wait (general faults of one person arriving
  together go out as one message); repeated every 4 h while unacknowledged.
- Acknowledged but unresolved: the owner is reminded every 4 h (P1/P2) or 24 h (P3/P4).
- A security incident of P2 or above starts the clock to report it upward: 4 h (1 h for critical
  infrastructure), with reminders to the director until the report is marked sent.
"""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta, Struct, field

from schoolops.units import Seconds

_TARGET = re.compile(r"^(primary|backup|director|role:[a-z][a-z0-9_-]*|person:[a-z0-9][a-z0-9._-]*|channel:[a-z][a-z0-9_-]*)\Z")

Target = Annotated[str, Meta(pattern=_TARGET.pattern, description="primary | backup | director | role:NAME | person:ID | channel:ID")]

Strict = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}


class Step(Struct, **Strict):
    after: Seconds  # from the start of escalation (cumulative, not from the previous step)
    notify: Annotated[list[Target], Meta(min_length=1)]


class Policy(Struct, **Strict):
    steps: Annotated[list[Step], Meta(min_length=1)]
    group_wait: Seconds = Seconds(0)  # general faults: wait, then send what gathered as one message
    unacked_reminder: Seconds | None = Seconds(1800)  # re-notify everyone reached so far, while unacknowledged
    owner_reminder: Seconds | None = Seconds(4 * 3600)  # acknowledged but unresolved: remind the owner
    progress_interval: Seconds | None = None  # the director's progress report, while unresolved
    closing_summary: bool = False  # the director gets a summary when it is resolved

    def __post_init__(self) -> None:
        afters = [float(step.after) for step in self.steps]
        if afters != sorted(afters):
            raise ValueError("steps: each step's `after` must not be earlier than the previous one's")
        for name in ("unacked_reminder", "owner_reminder", "progress_interval"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: at least 1s (or null to turn it off)")


def _major(*, p1: bool) -> Policy:
    first = ["primary", "director"] if p1 else ["primary"]
    return Policy(
        steps=[Step(after=Seconds(0), notify=first), Step(after=Seconds(300), notify=["backup"]),
               Step(after=Seconds(1200), notify=["director"])],
        unacked_reminder=Seconds(1800), owner_reminder=Seconds(4 * 3600),
        progress_interval=Seconds(1800), closing_summary=True,
    )


def _general() -> Policy:
    return Policy(steps=[Step(after=Seconds(0), notify=["primary"])], group_wait=Seconds(30),
                  unacked_reminder=Seconds(4 * 3600), owner_reminder=Seconds(24 * 3600))


class Policies(Struct, **Strict):
    P1: Policy = field(default_factory=lambda: _major(p1=True))
    P2: Policy = field(default_factory=lambda: _major(p1=False))
    P3: Policy = field(default_factory=_general)
    P4: Policy = field(default_factory=_general)


class SecurityClock(Struct, **Strict):
    deadline: Seconds = Seconds(4 * 3600)  # report a P2+ security incident upward within this
    critical_infrastructure_deadline: Seconds = Seconds(3600)
    reminder_interval: Seconds = Seconds(1800)


class EscalationConfig(Struct, **Strict):
    policies: Policies = field(default_factory=Policies)
    security: SecurityClock = field(default_factory=SecurityClock)
    # assets (by role) that count as critical infrastructure for the security clock
    critical_infrastructure_roles: list[str] = field(default_factory=list)
