"""The words of the domain, as types: severity, fault type, asset context, finding.

Pure data, no I/O. Rules produce findings; classification turns a finding into a fault (type,
severity, reason); incidents group faults. Everything that decides takes these and ``now``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from schoolops.wire import Tier


class Severity(enum.IntEnum):
    """Aligned with GB/T 20986 and the regulation: P1/P2 are major faults, P3/P4 general; INFO pages nobody."""

    P1 = 1  # 特別重大 critical
    P2 = 2  # 重大 major
    P3 = 3  # 較大 significant
    P4 = 4  # 一般 general
    INFO = 5

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}: use P1, P2, P3, P4 or info") from None

    @property
    def is_major(self) -> bool:
        return self <= Severity.P2

    def raised(self, steps: int = 1) -> Severity:
        """More severe by ``steps`` levels, at most P1; INFO stays INFO."""
        return self if self is Severity.INFO else Severity(max(Severity.P1, self - steps))

    def lowered(self, steps: int = 1) -> Severity:
        """Less severe by ``steps`` levels, at least P4 (lowering never silences a fault); INFO stays INFO."""
        return self if self is Severity.INFO else Severity(min(Severity.P4, self + steps))

    @property
    def label(self) -> str:
        return self.name if self is not Severity.INFO else "info"

    @property
    def title_en(self) -> str:
        return _TITLES[self][0]

    @property
    def title_zh(self) -> str:
        return _TITLES[self][1]


_TITLES = {
    Severity.P1: ("critical", "特別重大"),
    Severity.P2: ("major", "重大"),
    Severity.P3: ("significant", "較大"),
    Severity.P4: ("general", "一般"),
    Severity.INFO: ("information", "信息"),
}


class FaultType(enum.StrEnum):
    HARDWARE = "hardware"
    NETWORK = "network"
    SYSTEM = "system"
    APPLICATION = "application"
    SECURITY = "security"
    ENVIRONMENT = "environment"  # environment and power
    CAPACITY = "capacity"


@dataclass(frozen=True)
class AssetContext:
    """What classification and rule selection need to know about an asset."""

    name: str
    kind: str = "server"
    site: str = ""
    role: str = ""
    tier: Tier = Tier.NORMAL
    parents: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A rule's condition that holds now, with the value that made it hold."""

    rule: str  # the rule's id
    asset: str
    key: str  # what within the asset: a mountpoint, a process name, a check name; "" for the asset itself
    type: FaultType
    severity: Severity  # the rule's base severity at the level reached
    value: float | None
    summary: str  # plain English for people, e.g. "filesystem /var is 93% full (P3 at 90%)"
    since: float  # unix time the condition began to hold (before any `for` delay)

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}|{self.asset}|{self.key}"
