"""A run compared with the previous one: what is newly abnormal, what recovered, what stays abnormal.

Pure: results in, :class:`Comparison` out. A check is the same across runs when its item, asset
and key are (a mountpoint, an interface). "Still abnormal for N days" counts back through the
earlier runs' statuses of that check until one that was normal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Identity = tuple[str, str, str]  # item, asset, key
DAY = 86400.0


@dataclass(frozen=True)
class Still:
    identity: Identity
    since: float  # the start of the earliest run in the current abnormal streak
    days: int  # whole days since then (0: since today)


@dataclass(frozen=True)
class Comparison:
    previous_run: int | None
    new_abnormal: list[Identity] = field(default_factory=list)
    recovered: list[Identity] = field(default_factory=list)
    still_abnormal: list[Still] = field(default_factory=list)


def compare(current: Iterable[tuple[Identity, str]], previous: Iterable[tuple[Identity, str]] | None,
            history: Callable[[Identity], list[tuple[float, str]]], *, now: float,
            previous_run: int | None = None) -> Comparison:
    """``current``/``previous``: (check, status) of the two runs; ``history(check)``: (run start, status)
    of that check in runs before the current one, newest first."""
    now_status = dict(current)
    before = dict(previous or [])
    new, recovered, still = [], [], []
    for identity, status in now_status.items():
        was = before.get(identity)
        if status == "abnormal" and was != "abnormal":
            new.append(identity)
        elif status == "abnormal":
            since = now
            for started, earlier in history(identity):
                if earlier != "abnormal":
                    break
                since = started
            still.append(Still(identity, since, int((now - since) // DAY)))
        elif status == "normal" and was == "abnormal":
            recovered.append(identity)
    return Comparison(previous_run, sorted(new), sorted(recovered), sorted(still, key=lambda s: s.identity))
