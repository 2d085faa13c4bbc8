"""Maintenance windows: which assets they cover, when they are active, and whether they are valid.

A window always has an end time and an owner. Its scope names assets, sites or roles (any of them
matches), narrowed by labels (all must match); an empty scope matches nothing, so a window never
silences everything by accident. A recurring window is active during each occurrence of its cron
expression (computed in its time zone) that overlaps [starts_at, ends_at), and only within that span.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]  # no stubs in the venv

from collector.domain import AssetContext


@dataclass(frozen=True)
class Scope:
    assets: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)  # all must match

    @property
    def is_empty(self) -> bool:
        return not (self.assets or self.sites or self.roles or self.labels)

    def matches(self, asset: AssetContext) -> bool:
        """Any of assets/sites/roles matches (when some are given), and every label matches."""
        if self.is_empty:
            return False
        if (self.assets or self.sites or self.roles) and not (
            asset.name in self.assets or asset.site in self.sites or asset.role in self.roles
        ):
            return False
        return all(asset.labels.get(key) == value for key, value in self.labels.items())


@dataclass(frozen=True)
class Recurrence:
    cron: str  # croniter syntax, e.g. "0 22 * * 5" (Fridays at 22:00)
    duration: float  # seconds each occurrence lasts
    timezone: str = "UTC"  # occurrences are computed in this zoneinfo time zone

    def occurrence_at(self, now: float) -> tuple[float, float] | None:
        """The (start, end) of the occurrence under way at ``now``, or None between occurrences."""
        here = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        try:
            start = croniter(self.cron, here).get_prev(datetime)
            exact = croniter(self.cron, start).get_next(datetime)  # get_prev skips a match at `here` itself
        except CroniterBadDateError:  # an expression that never matches, e.g. 30 February
            return None
        if exact <= here:
            start = exact
        begins = start.timestamp()
        return (begins, begins + self.duration) if now < begins + self.duration else None


@dataclass(frozen=True)
class MaintenanceWindow:
    id: str
    scope: Scope
    starts_at: float
    ends_at: float
    owner: str
    reason: str
    recurrence: Recurrence | None = None  # when set, active during each occurrence within the span
    ended_at: float | None = None  # ended early by a person

    @property
    def effective_end(self) -> float:
        return self.ends_at if self.ended_at is None else min(self.ends_at, self.ended_at)

    def active_until(self, now: float) -> float | None:
        """When the active period containing ``now`` ends, or None if the window is not active at ``now``."""
        end = self.effective_end
        if not self.starts_at <= now < end:
            return None
        if self.recurrence is None:
            return end
        occurrence = self.recurrence.occurrence_at(now)
        return None if occurrence is None else min(occurrence[1], end)

    def active_at(self, now: float) -> bool:
        return self.active_until(now) is not None

    def covers(self, asset: AssetContext, now: float) -> bool:
        return self.scope.matches(asset) and self.active_at(now)


def windows_covering(windows: Iterable[MaintenanceWindow], asset: AssetContext, now: float) -> list[MaintenanceWindow]:
    """The windows that cover ``asset`` at ``now``, in the order given."""
    return [window for window in windows if window.covers(asset, now)]


def validate_window(window: MaintenanceWindow) -> MaintenanceWindow:
    """``window`` itself when it is valid; otherwise ValueError with a message naming the field."""
    if not window.id.strip():
        raise ValueError("id: a maintenance window needs an id")
    if window.scope.is_empty:
        raise ValueError("scope: name at least one asset, site, role or label; an empty scope covers nothing")
    for name in ("starts_at", "ends_at"):
        if not math.isfinite(getattr(window, name)):
            raise ValueError(f"{name}: must be a finite time")
    if window.ends_at <= window.starts_at:
        raise ValueError(f"ends_at: must be after starts_at ({_utc(window.ends_at)} is not after {_utc(window.starts_at)})")
    if window.ended_at is not None and not math.isfinite(window.ended_at):
        raise ValueError("ended_at: must be a finite time")
    if not window.owner.strip():
        raise ValueError("owner: a maintenance window needs an owner")
    if window.recurrence is not None:
        _validate_recurrence(window.recurrence, window.starts_at, window.ends_at)
    return window


def _validate_recurrence(recurrence: Recurrence, starts_at: float, ends_at: float) -> None:
    if not croniter.is_valid(recurrence.cron):
        raise ValueError(f"recurrence.cron: {recurrence.cron!r} is not a valid cron expression")
    span = ends_at - starts_at
    if not 0 < recurrence.duration < span:
        raise ValueError(
            f"recurrence.duration: must be more than 0 and less than the window's span of {span:g} s, "
            f"not {recurrence.duration:g}"
        )
    try:
        zone = ZoneInfo(recurrence.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"recurrence.timezone: unknown time zone {recurrence.timezone!r}") from None
    try:
        first = croniter(recurrence.cron, datetime.fromtimestamp(starts_at, zone)).get_next(datetime)
    except CroniterBadDateError:
        first = None
    under_way = recurrence.occurrence_at(starts_at) is not None
    if not under_way and (first is None or first.timestamp() >= ends_at):
        raise ValueError(f"recurrence.cron: {recurrence.cron!r} has no occurrence between starts_at and ends_at")


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
